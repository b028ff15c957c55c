"""The sandbox's query web service over real HTTP on 127.0.0.1: auth, typed params, paging, filtering, faults."""

from __future__ import annotations

import json
from collections import Counter
from datetime import datetime

import pandas as pd
import pytest
import requests

from leadscore.sandbox.dirt import WireDirt
from leadscore.slate.keyorder import NIL_GUID, order_key_function, sqlserver_order_key, text_order_key
from leadscore.slate.queries import INTERACTIONS, LEADS, MAX_PAGE_ROWS

TIMEOUT = 30


def call(sandbox, query: str = "leads", *, auth: object = "ok", h: str | None = None, qid: str | None = None, **params):
    """One GET of /manage/query/run with the sandbox's credentials unless overridden."""
    creds = sandbox.credentials
    q = creds.queries[query]
    args = {"id": qid or q.id, "cmd": "service", "output": "json", "h": q.h if h is None else h}
    args.update({k: v for k, v in params.items() if v is not None})
    basic = (creds.service_user, creds.service_password) if auth == "ok" else auth
    return requests.get(sandbox.query_url, params=args, auth=basic, timeout=TIMEOUT)


def all_pages(sandbox, query: str, limit: int, **params) -> list[list[dict]]:
    """Follow the `after` cursor until an empty page; returns the pages."""
    key = {"leads": LEADS.key, "interactions": INTERACTIONS.key}[query]
    pages, after = [], None
    for _ in range(10_000):
        r = call(sandbox, query, limit=limit, after=after, **params)
        assert r.status_code == 200, r.text
        rows = r.json()["row"]
        if not rows:
            return pages
        pages.append(rows)
        after = rows[-1][key]
    raise AssertionError("paging did not end")


@pytest.fixture(autouse=True)
def clean_wire(request, sandbox_session):
    """These tests check paging and filtering on the stored values: serve them without the real-answer variants
    (tests/sandbox/test_wire_variants.py covers those)."""
    handles = [sandbox_session]
    if "sandbox_text_order" in request.fixturenames:
        handles.append(request.getfixturevalue("sandbox_text_order"))
    saved = [handle.web.wire for handle in handles]
    for handle in handles:
        handle.web.wire = WireDirt.none()
    yield
    for handle, wire in zip(handles, saved, strict=True):
        handle.web.wire = wire


@pytest.fixture(scope="module")
def frames(sandbox_data_dir):
    return pd.read_parquet(sandbox_data_dir / "leads.parquet"), pd.read_parquet(
        sandbox_data_dir / "interactions.parquet"
    )


def expected_leads(leads: pd.DataFrame, since: datetime, until: datetime) -> pd.DataFrame:
    created = leads["_created"]
    app = leads["_app_created"]
    inside = ((created >= since) & (created < until)) | ((app >= since) & (app < until)).fillna(False)
    return leads[inside.to_numpy(dtype=bool) & leads["person_guid"].notna().to_numpy()]


# --- auth ---


def test_missing_basic_auth_is_401(sandbox):
    r = call(sandbox, auth=None)
    assert r.status_code == 401
    assert r.headers["WWW-Authenticate"].startswith("Basic")


def test_wrong_password_is_401(sandbox):
    assert call(sandbox, auth=(sandbox.credentials.service_user, "wrong")).status_code == 401


def test_wrong_h_is_403(sandbox):
    assert call(sandbox, h="0" * 32).status_code == 403
    # the h of the other query does not open this one
    assert call(sandbox, "leads", h=sandbox.credentials.queries["interactions"].h).status_code == 403


def test_unknown_query_id_is_404(sandbox):
    assert call(sandbox, qid="11111111-2222-3333-4444-555555555555").status_code == 404


# --- typed params ---


@pytest.mark.parametrize(
    ("param", "value"),
    [("since", "last tuesday"), ("until", "2026-13-01"), ("limit", "ten"), ("limit", "0"), ("after", "not-a-guid")],
)
def test_bad_typed_param_is_400_naming_it(sandbox, param, value):
    r = call(sandbox, **{param: value})
    assert r.status_code == 400
    assert param in r.json()["error"]


def test_cmd_must_be_service(sandbox):
    creds = sandbox.credentials
    q = creds.queries["leads"]
    r = requests.get(
        sandbox.query_url,
        params={"id": q.id, "cmd": "export", "h": q.h},
        auth=(creds.service_user, creds.service_password),
        timeout=TIMEOUT,
    )
    assert r.status_code == 400


def test_date_only_param_is_accepted(sandbox):
    r = call(sandbox, since="2026-01-01", until="2026-02-01", limit=5)
    assert r.status_code == 200
    assert r.headers["Content-Type"].startswith("application/json")


# --- paging and filtering ---


def test_leads_pages_cover_every_row_exactly_once(sandbox, frames):
    leads, _ = frames
    since, until = datetime(2025, 6, 1), datetime(2026, 6, 1)
    pages = all_pages(sandbox, "leads", 97, since=since.isoformat(), until=until.isoformat())
    served = Counter(row["person_guid"] for page in pages for row in page)
    expected = Counter(expected_leads(leads, since, until)["person_guid"].str.lower())
    assert served == expected
    keys = [row["person_guid"] for page in pages for row in page]
    assert keys == sorted(keys, key=sqlserver_order_key) != sorted(keys)  # SQL Server's order by default, as Slate
    # a cursor never splits duplicate records of one person between pages
    firsts = {page[0]["person_guid"] for page in pages[1:]}
    lasts = {page[-1]["person_guid"] for page in pages[:-1]}
    assert not firsts & lasts


def test_interaction_pages_cover_the_window_exactly_once(sandbox, frames):
    _, interactions = frames
    since, until = datetime(2025, 1, 1), datetime(2026, 1, 1)
    pages = all_pages(sandbox, "interactions", 1000, since=since.isoformat(), until=until.isoformat())
    served = [row["interaction_guid"] for page in pages for row in page]
    inside = (interactions["_occurred"] >= since) & (interactions["_occurred"] < until)
    # duplicate interaction records (dirt) share a GUID: each is served once, on the same page as its twins
    assert Counter(served) == Counter(interactions.loc[inside, "interaction_guid"].str.lower())
    assert all(len(page) <= 1000 for page in pages)


def test_default_window_is_everything_until_the_sandbox_end_and_limit_is_capped(sandbox, frames):
    _, interactions = frames
    r = call(sandbox, "interactions", limit=MAX_PAGE_ROWS * 10)
    assert r.status_code == 200
    assert len(r.json()["row"]) == min(MAX_PAGE_ROWS, len(interactions))


def test_application_created_is_hidden_until_it_happens(sandbox, frames):
    leads, _ = frames
    applied = leads[leads["_app_created"].notna() & (leads["_app_created"] > leads["_created"])]
    lead = applied.iloc[0]
    guid = str(lead["person_guid"]).lower()
    before = lead["_app_created"].to_pydatetime()
    since = lead["_created"].to_pydatetime()
    rows = [r for p in all_pages(sandbox, "leads", 5000, since=since.isoformat(), until=before.isoformat()) for r in p]
    row = next(r for r in rows if r["person_guid"] == guid)
    assert "application_created" not in row
    assert row["updated"] == since.strftime("%Y-%m-%dT%H:%M:%S")
    later = (lead["_app_created"] + pd.Timedelta(seconds=1)).to_pydatetime()
    rows = [r for p in all_pages(sandbox, "leads", 5000, since=since.isoformat(), until=later.isoformat()) for r in p]
    row = next(r for r in rows if r["person_guid"] == guid)
    assert "application_created" in row
    assert row["updated"] == before.strftime("%Y-%m-%dT%H:%M:%S")


def test_values_are_strings_and_nulls_are_omitted(sandbox, frames):
    leads, _ = frames
    rows = [r for page in all_pages(sandbox, "leads", MAX_PAGE_ROWS) for r in page]
    assert rows
    assert all(isinstance(v, str) for r in rows for v in r.values())
    no_college = set(leads.loc[leads["college_of_interest"].isna(), "person_guid"].str.lower())
    assert no_college
    assert all("college_of_interest" not in r for r in rows if r["person_guid"] in no_college)
    assert all("_created" not in r and "_app_created" not in r for r in rows)


def test_empty_window_is_an_empty_row_list(sandbox):
    r = call(sandbox, since="1990-01-01", until="1990-01-02")
    assert r.status_code == 200
    assert r.json() == {"row": []}


# --- faults ---


def test_rate_limit_fault_answers_429_with_retry_after_then_clears(sandbox):
    sandbox.web.faults.set("rate_limit", count=2, retry_after=7)
    for _ in range(2):
        r = call(sandbox, limit=3)
        assert r.status_code == 429
        assert r.headers["Retry-After"] == "7"
    assert call(sandbox, limit=3).status_code == 200


@pytest.mark.parametrize(("kind", "status"), [("error_500", 500), ("error_503", 503)])
def test_server_error_faults(sandbox, kind, status):
    sandbox.web.faults.set(kind)
    assert call(sandbox, limit=3).status_code == status
    assert call(sandbox, limit=3).status_code == 200


def test_slow_fault_still_answers_and_is_logged(sandbox):
    sandbox.web.faults.set("slow", seconds=0.2)
    r = call(sandbox, limit=3)
    assert r.status_code == 200
    assert len(r.json()["row"]) == 3
    assert sandbox.web.request_log()[-1]["fault"] == ["slow"]


def test_truncated_json_fault_is_status_200_with_a_broken_body(sandbox):
    sandbox.web.faults.set("truncated_json")
    r = call(sandbox, limit=50)
    assert r.status_code == 200
    with pytest.raises(json.JSONDecodeError):
        json.loads(r.text)


def test_html_error_fault_is_status_200_text_html(sandbox):
    sandbox.web.faults.set("html_error")
    r = call(sandbox, limit=3)
    assert r.status_code == 200
    assert r.headers["Content-Type"].startswith("text/html")
    assert r.text.lstrip().lower().startswith("<!doctype html")


def test_drop_connection_fault_closes_without_answer(sandbox):
    sandbox.web.faults.set("drop_connection")
    with pytest.raises(requests.ConnectionError):
        call(sandbox, limit=3)
    assert call(sandbox, limit=3).status_code == 200


def test_drop_column_fault_removes_a_required_column(sandbox):
    sandbox.web.faults.set("drop_column", query="interactions", column="kind")
    rows = call(sandbox, "interactions", limit=20).json()["row"]
    assert rows and all("kind" not in r for r in rows)
    assert all("kind" in r for r in call(sandbox, "interactions", limit=20).json()["row"])


def test_repeat_cursor_fault_serves_the_first_page_again(sandbox):
    first = call(sandbox, limit=10).json()["row"]
    sandbox.web.faults.set("repeat_cursor")
    again = call(sandbox, limit=10, after=first[-1]["person_guid"]).json()["row"]
    assert again == first
    second = call(sandbox, limit=10, after=first[-1]["person_guid"]).json()["row"]
    assert sqlserver_order_key(second[0]["person_guid"]) > sqlserver_order_key(first[-1]["person_guid"])
    sandbox.web.faults.set("repeat_cursor")
    assert call(sandbox, limit=10, after=NIL_GUID).json()["row"] == first  # page 1's cursor leaves the fault armed
    assert sandbox.web.faults.armed() and call(sandbox, limit=10, after=first[-1]["person_guid"]).json()["row"] == first


def test_fault_limited_to_a_query_and_page(sandbox):
    sandbox.web.faults.set("error_500", query="leads", page=2)
    assert call(sandbox, "interactions", limit=10).status_code == 200
    first = call(sandbox, limit=10)
    assert first.status_code == 200
    assert call(sandbox, limit=10, after=first.json()["row"][-1]["person_guid"]).status_code == 500


def test_control_endpoint_arms_and_clears_faults(sandbox):
    creds = sandbox.credentials
    auth = (creds.service_user, creds.service_password)
    url = sandbox.web_url + "/_sandbox/faults"
    assert requests.post(url, json={"kind": "rate_limit", "retry_after": 3}, timeout=TIMEOUT).status_code == 401
    assert requests.post(url, json={"kind": "nope"}, auth=auth, timeout=TIMEOUT).status_code == 400
    r = requests.post(url, json={"kind": "rate_limit", "retry_after": 3}, auth=auth, timeout=TIMEOUT)
    assert r.status_code == 200
    assert r.json()["armed"][0]["kind"] == "rate_limit"
    assert call(sandbox, limit=1).headers["Retry-After"] == "3"
    requests.post(url, json={"kind": "error_503", "count": 5}, auth=auth, timeout=TIMEOUT)
    assert requests.delete(url, auth=auth, timeout=TIMEOUT).json() == {"armed": []}
    assert call(sandbox, limit=1).status_code == 200


def test_request_log_records_query_params_and_status(sandbox):
    call(sandbox, "interactions", limit=2, since="2026-01-01")
    call(sandbox, h="bad")
    log = sandbox.web.request_log()
    assert [(e["query"], e["status"]) for e in log] == [("interactions", 200), ("leads", 403)]
    assert log[0]["params"]["since"] == "2026-01-01"
    assert "h" not in log[1]["params"]


def test_rendered_json_escapes_like_the_json_module():
    import pyarrow as pa

    from leadscore.sandbox.webservice import render_rows

    names = ["a", 'we"ird', "c"]
    values = [
        pa.array(['q"uote', "back\\slash", "tab\there", "é ü 中"]),
        pa.array(["1", None, "3", None]),
        pa.array(["</script>", "x", None, "line\nbreak"]),
    ]
    expected = {
        "row": [
            {k: v for k, v in zip(names, vals, strict=True) if v is not None}
            for vals in zip(*(a.to_pylist() for a in values), strict=True)
        ]
    }
    assert json.loads(render_rows(names, values)) == expected
    with_nulls = json.loads(render_rows(names, values, include_nulls=True))
    assert with_nulls["row"][1] == {"a": "back\\slash", 'we"ird': "", "c": "x"}
    assert json.loads(render_rows(names, [pa.array([], pa.string())] * 3)) == {"row": []}


@pytest.mark.parametrize("key_order", ["sqlserver", "text"])
def test_guid_sort_matches_the_order_key_and_refuses_odd_keys(key_order):
    import uuid

    import numpy as np
    import pyarrow as pa

    from leadscore.sandbox.webservice import _guid_sort_indices, _sort_key_indices

    rng = np.random.default_rng(3)
    keys = [str(uuid.UUID(bytes=rng.bytes(16))) for _ in range(500)] + [NIL_GUID] * 2
    sort_key = order_key_function(key_order)
    order = _guid_sort_indices(pa.array(keys), key_order)
    assert [keys[i] for i in order] == sorted(keys, key=sort_key)
    odd = [*keys, "not-a-guid", "{" + keys[0] + "}"]
    assert _guid_sort_indices(pa.array(odd), key_order) is None
    assert [odd[i] for i in _sort_key_indices(pa.array(odd), sort_key)] == sorted(odd, key=sort_key)


@pytest.mark.parametrize("key_order", ["sqlserver", "text"])
def test_guid_sort_breaks_ties_on_the_low_half(key_order):
    import pyarrow as pa

    from leadscore.sandbox.webservice import _guid_sort_indices

    keys = [  # equal in the most significant 8 bytes of each order, different below
        "aaaaaaaa-aaaa-4aaa-9fff-000000000000",
        "aaaaaaaa-aaaa-4aaa-8fff-ffffffffffff",
        "0" * 8 + "-0000-4000-8000-" + "0" * 12,
        "bbbbbbbb-aaaa-4aaa-9fff-000000000000",
    ]
    order = _guid_sort_indices(pa.array(keys), key_order)
    assert [keys[i] for i in order] == sorted(keys, key=order_key_function(key_order))


def test_after_compares_in_sql_server_order(sandbox):
    everything = [r["person_guid"] for r in call(sandbox, limit=MAX_PAGE_ROWS).json()["row"]]
    assert len(everything) < MAX_PAGE_ROWS  # one page holds the whole answer
    cursor = everything[len(everything) // 2]
    rows = call(sandbox, limit=MAX_PAGE_ROWS, after=cursor.upper()).json()["row"]
    after = [k for k in everything if sqlserver_order_key(k) > sqlserver_order_key(cursor)]
    assert [r["person_guid"] for r in rows] == after and len(after) < len(everything)
    assert any(text_order_key(k) < cursor for k in after)  # text order would have dropped these
    assert call(sandbox, limit=50, after=NIL_GUID).json() == call(sandbox, limit=50).json()


def test_text_order_is_a_switch_with_a_matching_connection_string(sandbox_text_order, frames):
    import io

    from leadscore.sandbox.serve import describe

    leads, _ = frames
    sandbox_text_order.web.clear_request_log()
    pages = all_pages(sandbox_text_order, "leads", 250)
    keys = [row["person_guid"] for page in pages for row in page]
    assert len(pages) > 3 and keys == sorted(keys) != sorted(keys, key=sqlserver_order_key)
    assert set(keys) == set(leads["person_guid"].dropna().str.lower())
    api = json.loads(sandbox_text_order.connection_uris()["AIRFLOW_CONN_SLATE_API"])
    assert api["extra"]["key_order"] == "text"
    out = io.StringIO()
    describe(sandbox_text_order, out)
    assert "key order         : text" in out.getvalue() and '"key_order": "text"' in out.getvalue()


def test_the_default_connection_string_needs_no_key_order(sandbox):
    import io

    from leadscore.sandbox.serve import describe

    assert sandbox.web.key_order == "sqlserver"
    assert "key_order" not in json.loads(sandbox.connection_uris()["AIRFLOW_CONN_SLATE_API"])["extra"]
    out = io.StringIO()
    describe(sandbox, out)
    assert "key order         : sqlserver" in out.getvalue() and "key_order" not in out.getvalue()


def test_tables_must_share_one_key_order(sandbox_data_dir, frames):
    from leadscore.sandbox.config import load_or_create_credentials
    from leadscore.sandbox.webservice import QueryTable, QueryWebService

    leads, interactions = frames
    tables = {
        LEADS.name: QueryTable(LEADS, leads, key_order="sqlserver"),
        INTERACTIONS.name: QueryTable(INTERACTIONS, interactions, key_order="text"),
    }
    with pytest.raises(ValueError, match="key_order"):
        QueryWebService(tables, load_or_create_credentials(sandbox_data_dir), datetime(2026, 11, 23))
    with pytest.raises(ValueError, match="key_order must be one of"):
        QueryTable(LEADS, leads, key_order="binary")


def test_the_key_order_switch_is_a_setting_and_a_cli_flag():
    from leadscore.cli import _parser
    from leadscore.settings import SettingsError, load_settings

    assert load_settings({}).sandbox_key_order == "sqlserver"
    assert load_settings({"LEADSCORE_SANDBOX_KEY_ORDER": "text"}).sandbox_key_order == "text"
    with pytest.raises(SettingsError, match="LEADSCORE_SANDBOX_KEY_ORDER"):
        load_settings({"LEADSCORE_SANDBOX_KEY_ORDER": "binary"})
    assert _parser().parse_args(["sandbox", "serve", "--key-order", "text"]).key_order == "text"
    assert _parser().parse_args(["sandbox", "serve"]).key_order is None  # then the setting decides
    with pytest.raises(SystemExit):
        _parser().parse_args(["sandbox", "serve", "--key-order", "binary"])
