"""The Slate web-service client against the sandbox's query web service (real HTTP on 127.0.0.1, real faults)."""

from __future__ import annotations

import itertools
import json
from dataclasses import replace
from typing import Any

import pandas as pd
import pytest

from leadscore.slate.client import SlateClient
from leadscore.slate.connections import QueryAuth, SlateApiConfig, api_config_from_connection
from leadscore.slate.errors import (
    SlateAuthError,
    SlateConfigError,
    SlateError,
    SlateNotFoundError,
    SlateResponseError,
    SlateSchemaError,
    SlateTransientError,
)
from leadscore.slate.keyorder import NIL_GUID, order_key_function, sqlserver_order_key
from leadscore.slate.pages import format_wire_datetime
from leadscore.slate.queries import INTERACTIONS, LEADS

# A two-month window of interactions keeps the paged tests to a few dozen requests.
SINCE, UNTIL = pd.Timestamp("2026-05-01"), pd.Timestamp("2026-07-01")


class FakeSleep:
    """Records the waits the client asks for instead of waiting."""

    def __init__(self) -> None:
        self.calls: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)


def sandbox_config(sandbox: Any, **changes: Any) -> SlateApiConfig:
    conn = json.loads(sandbox.connection_uris()["AIRFLOW_CONN_SLATE_API"])
    config = api_config_from_connection(
        conn["conn_type"], conn["host"], conn["port"], conn["schema"], conn["login"], conn["password"], conn["extra"]
    )
    return replace(config, **{"backoff": 0.01, "max_backoff": 30.0, **changes})


def client_for(sandbox: Any, **changes: Any) -> tuple[SlateClient, FakeSleep]:
    sleep = FakeSleep()
    return SlateClient(sandbox_config(sandbox, **changes), sleep=sleep), sleep


def secrets_of(config: SlateApiConfig) -> list[str]:
    return [config.password, *(q.h for q in config.queries.values())]


def assert_no_secrets(message: str, config: SlateApiConfig) -> None:
    for secret in secrets_of(config):
        assert secret not in message


def sort_rows(frame: pd.DataFrame, key: str) -> pd.DataFrame:
    return frame.sort_values([key, *[c for c in frame.columns if c != key]]).reset_index(drop=True)


@pytest.fixture(scope="module")
def full_pulls(sandbox_session: Any) -> dict[str, pd.DataFrame]:
    """Each query's window fetched in one page (the reference for the paging tests)."""
    client = SlateClient(sandbox_config(sandbox_session))
    return {
        LEADS.name: client.fetch_all(LEADS, None, None, 10_000).frame,
        INTERACTIONS.name: client.fetch_all(INTERACTIONS, SINCE, UNTIL, 10_000).frame,
    }


# -- paging ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("query", "page_size"), [(INTERACTIONS, 150), (INTERACTIONS, 400), (LEADS, 150)])
def test_small_pages_cover_every_row_exactly_once(sandbox: Any, full_pulls: dict, query: Any, page_size: int) -> None:
    client, sleep = client_for(sandbox)
    since, until = (SINCE, UNTIL) if query is INTERACTIONS else (None, None)
    result = client.fetch_all(query, since, until, page_size)
    reference = full_pulls[query.name]
    assert len(reference) > 2 * page_size  # the window really spans several pages
    assert result.rows == len(reference) == len(result.frame)
    pd.testing.assert_frame_equal(sort_rows(result.frame, query.key), sort_rows(reference, query.key))
    assert result.pages == len(sandbox.web.request_log()) and result.pages >= len(reference) // page_size
    assert result.retries == 0 and sleep.calls == []
    sent = [e["params"] for e in sandbox.web.request_log()]
    assert sent[0]["after"] == NIL_GUID and all(p["limit"] == str(page_size) for p in sent)
    cursors = [sqlserver_order_key(p["after"]) for p in sent]
    assert cursors == sorted(cursors) and len(set(cursors)) == len(cursors)  # SQL Server order, out of the box


def test_window_parameters_are_sent_in_slate_format(sandbox: Any) -> None:
    client, _ = client_for(sandbox)
    client.fetch_all(INTERACTIONS, pd.Timestamp("2026-06-01T00:00:00+02:00"), UNTIL, 10_000)
    params = sandbox.web.request_log()[0]["params"]
    assert params["since"] == "2026-05-31T22:00:00" and params["until"] == "2026-07-01T00:00:00"
    assert params["cmd"] == "service" and params["output"] == "json"
    assert format_wire_datetime(None) is None


@pytest.mark.parametrize(
    ("value", "zone", "wire"),
    [
        ("2026-03-09T00:00:00", "America/New_York", "2026-03-08T20:00:00"),  # EDT: the first Monday after the change
        ("2026-03-02T00:00:00", "America/New_York", "2026-03-01T19:00:00"),  # EST
        ("2026-11-02T00:00:00", "America/New_York", "2026-11-01T19:00:00"),
        ("2026-11-01T05:30:00", "America/New_York", "2026-11-01T01:30:00"),  # both 01:30s exist; each UTC has one
        ("2026-11-01T06:30:00", "America/New_York", "2026-11-01T01:30:00"),
        ("2026-06-01T00:00:00+02:00", "America/Los_Angeles", "2026-05-31T15:00:00"),
        ("2026-06-01T00:00:00", "Asia/Kolkata", "2026-06-01T05:30:00"),
        ("2026-06-01T00:00:00", "UTC", "2026-06-01T00:00:00"),
    ],
)
def test_window_bounds_are_sent_as_the_instance_wall_time(value: str, zone: str, wire: str) -> None:
    assert format_wire_datetime(value, zone) == wire


def test_unknown_zone_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="not an IANA time zone name"):
        format_wire_datetime("2026-06-01", "Eastern")


def test_frame_is_strings_with_omitted_nulls_and_extra_columns(sandbox: Any, full_pulls: dict) -> None:
    frame = full_pulls[LEADS.name]
    assert list(frame.columns[: len(LEADS.column_names)]) == list(LEADS.column_names)
    assert all(str(t) == "str" for t in frame.dtypes)
    assert frame["application_created"].isna().any()  # NULLs were omitted from the rows and came back as NaN
    assert frame["person_guid"].notna().all()


def test_empty_window_returns_an_empty_frame_with_the_query_columns(sandbox: Any) -> None:
    client, _ = client_for(sandbox)
    result = client.fetch_all(INTERACTIONS, "1995-01-01", "1995-01-02", 100)
    assert result.rows == 0 and result.pages == 1 and list(result.frame.columns) == list(INTERACTIONS.column_names)


def test_page_size_out_of_range(sandbox: Any) -> None:
    client, _ = client_for(sandbox)
    with pytest.raises(ValueError, match="page_size"):
        client.fetch_all(LEADS, None, None, 10_001)


# -- key order: SQL Server's (the default, as Slate) and text (the switch) --------------------------------------


@pytest.fixture(params=["sqlserver", "text"])
def ordered_sandbox(request: pytest.FixtureRequest, sandbox: Any, sandbox_text_order: Any) -> Any:
    """The session sandbox (SQL Server order) or its text-order twin over the same data, request log cleared."""
    handle = sandbox if request.param == "sqlserver" else sandbox_text_order
    handle.web.clear_request_log()
    return handle


@pytest.mark.parametrize(("query", "page_size"), [(INTERACTIONS, 97), (LEADS, 120)])
def test_paging_works_in_either_order_from_the_printed_connection(
    ordered_sandbox: Any, full_pulls: dict, query: Any, page_size: int
) -> None:
    order = ordered_sandbox.web.key_order
    extra = json.loads(ordered_sandbox.connection_uris()["AIRFLOW_CONN_SLATE_API"])["extra"]
    assert extra.get("key_order", "sqlserver") == order  # the default needs no knob; text is spelled out
    client, _ = client_for(ordered_sandbox)  # the connection exactly as printed: no key_order set by hand
    since, until = (SINCE, UNTIL) if query is INTERACTIONS else (None, None)
    pages = list(client.fetch_pages(query, since, until, page_size))
    reference = full_pulls[query.name]
    assert len(pages) >= 10 and sum(len(p.rows) for p in pages) == len(reference)
    keys = [r[query.key] for p in pages for r in p.rows]
    assert sorted(keys) == sorted(reference[query.key])
    for name in ("sqlserver", "text"):  # served in its own order, which is not the other one on this data
        sort_key = order_key_function(name)
        assert ([sort_key(k) for k in keys] == sorted(sort_key(k) for k in keys)) is (name == order)


@pytest.mark.parametrize(("client_order", "server"), [("text", "sqlserver"), ("sqlserver", "text")])
def test_a_key_order_mismatch_fails_on_page_1_naming_the_knob(
    client_order: str, server: str, sandbox: Any, sandbox_text_order: Any
) -> None:
    handle = sandbox if server == "sqlserver" else sandbox_text_order
    client, _ = client_for(handle, key_order=client_order)
    with pytest.raises(SlateResponseError) as info:
        client.fetch_all(INTERACTIONS, SINCE, UNTIL, 500)
    message = str(info.value)
    assert "keys out of order" in message and "page 1" in message and f"key_order={client_order!r}" in message
    assert f'this page is in {server} order: set "key_order": "{server}" in the slate_api extras' in message


# -- failures that must stop at once -----------------------------------------------------------------------------


def test_wrong_password_is_a_clear_401(sandbox: Any) -> None:
    client, sleep = client_for(sandbox, password="not-the-password")
    with pytest.raises(SlateAuthError) as info:
        client.fetch_all(LEADS, None, None, 100)
    message = str(info.value)
    assert "query 'leads'" in message and "page 1" in message and "HTTP 401" in message and "password" in message
    assert "not-the-password" not in message and info.value.status == 401
    assert_no_secrets(message, sandbox_config(sandbox))
    assert sleep.calls == [] and len(sandbox.web.request_log()) == 1


def test_wrong_h_is_a_clear_403(sandbox: Any) -> None:
    config = sandbox_config(sandbox)
    queries = {**config.queries, "interactions": QueryAuth(config.queries["interactions"].id, "0" * 32)}
    client = SlateClient(replace(config, queries=queries), sleep=FakeSleep())
    with pytest.raises(SlateAuthError) as info:
        client.fetch_all(INTERACTIONS, SINCE, UNTIL, 100)
    message = str(info.value)
    assert "query 'interactions'" in message and "HTTP 403" in message and "'h'" in message
    assert "0" * 32 not in message
    assert_no_secrets(message, config)


def test_unknown_query_id_is_a_clear_404(sandbox: Any) -> None:
    config = sandbox_config(sandbox)
    queries = {**config.queries, "leads": QueryAuth("00000000-0000-4000-8000-000000000000", config.queries["leads"].h)}
    client = SlateClient(replace(config, queries=queries), sleep=FakeSleep())
    with pytest.raises(SlateNotFoundError) as info:
        client.fetch_all(LEADS, None, None, 100)
    assert "HTTP 404" in str(info.value) and "queries.leads.id" in str(info.value)
    assert_no_secrets(str(info.value), config)


def test_html_page_with_status_200_is_an_error_not_zero_rows(sandbox: Any) -> None:
    client, sleep = client_for(sandbox)
    sandbox.web.faults.set("html_error", page=2)
    with pytest.raises(SlateResponseError) as info:
        client.fetch_all(INTERACTIONS, SINCE, UNTIL, 500)
    message = str(info.value)
    assert "HTML" in message and "page 2" in message and "An error has occurred" in message
    assert sleep.calls == []


def test_missing_required_column_names_column_and_page(sandbox: Any) -> None:
    client, _ = client_for(sandbox)
    sandbox.web.faults.set("drop_column", page=3, column="origin_date")
    with pytest.raises(SlateSchemaError) as info:
        client.fetch_all(LEADS, None, None, 200)
    message = str(info.value)
    assert "origin_date" in message and "page 3" in message and "query 'leads'" in message


def test_required_column_missing_from_every_small_page_is_caught_at_the_end(sandbox: Any) -> None:
    client, _ = client_for(sandbox)
    sandbox.web.faults.set("drop_column", count=1000, query="interactions", column="kind")
    with pytest.raises(SlateSchemaError, match="'kind'"):
        client.fetch_all(INTERACTIONS, "2026-07-01", "2026-07-04", 10)  # pages below the per-page check's size
    assert len(sandbox.web.request_log()) > 2


def test_repeated_cursor_is_an_error(sandbox: Any) -> None:
    client, _ = client_for(sandbox)
    sandbox.web.faults.set("repeat_cursor")
    with pytest.raises(SlateResponseError) as info:
        client.fetch_all(INTERACTIONS, SINCE, UNTIL, 500)
    assert "cursor" in str(info.value) and "page 2" in str(info.value)


# -- transient failures: retried ---------------------------------------------------------------------------------


def test_429_honours_retry_after(sandbox: Any, full_pulls: dict) -> None:
    client, sleep = client_for(sandbox)
    sandbox.web.faults.set("rate_limit", page=2, retry_after=7)
    result = client.fetch_all(INTERACTIONS, SINCE, UNTIL, 200)
    assert sleep.calls == [7.0]
    assert result.retries == 1 and result.rows == len(full_pulls[INTERACTIONS.name])


def test_retry_after_is_capped_by_max_backoff(sandbox: Any) -> None:
    client, sleep = client_for(sandbox, max_backoff=5.0)
    sandbox.web.faults.set("rate_limit", retry_after=3600)
    client.fetch_all(LEADS, None, None, 10_000)
    assert sleep.calls == [5.0]


@pytest.mark.parametrize("fault", ["error_500", "error_503", "drop_connection"])
def test_server_errors_are_retried_then_succeed(sandbox: Any, full_pulls: dict, fault: str) -> None:
    client, sleep = client_for(sandbox)
    sandbox.web.faults.set(fault, count=2, page=1, retry_after=0)
    result = client.fetch_all(INTERACTIONS, SINCE, UNTIL, 200)
    assert result.retries == 2 and len(sleep.calls) == 2
    assert result.rows == len(full_pulls[INTERACTIONS.name])
    statuses = [e["status"] for e in sandbox.web.request_log()]
    assert statuses.count(200) == result.pages


def test_backoff_grows_exponentially_with_jitter(sandbox: Any) -> None:
    client, sleep = client_for(sandbox, backoff=1.0, max_backoff=3.0, max_retries=4)
    sandbox.web.faults.set("error_500", count=4)
    client.fetch_all(LEADS, None, None, 10_000)
    bases = [1.0, 2.0, 3.0, 3.0]  # doubling, capped at max_backoff
    assert len(sleep.calls) == 4
    for wait, base in zip(sleep.calls, bases, strict=True):
        assert base / 2 <= wait <= base


def test_retries_exhausted_is_a_transient_error(sandbox: Any) -> None:
    client, sleep = client_for(sandbox, max_retries=2)
    sandbox.web.faults.set("error_503", count=10, retry_after=0)
    with pytest.raises(SlateTransientError) as info:
        client.fetch_all(LEADS, None, None, 100)
    message = str(info.value)
    assert "3 attempts" in message and "HTTP 503" in message and "page 1" in message
    assert len(sleep.calls) == 2 and len(sandbox.web.request_log()) == 3


def test_truncated_json_is_retried(sandbox: Any, full_pulls: dict) -> None:
    client, sleep = client_for(sandbox)
    sandbox.web.faults.set("truncated_json", page=2)
    result = client.fetch_all(INTERACTIONS, SINCE, UNTIL, 200)
    assert result.retries == 1 and len(sleep.calls) == 1
    assert result.rows == len(full_pulls[INTERACTIONS.name])


def test_truncated_json_every_time_is_an_error_never_zero_rows(sandbox: Any) -> None:
    client, _ = client_for(sandbox, max_retries=1)
    sandbox.web.faults.set("truncated_json", count=10)
    with pytest.raises(SlateResponseError) as info:
        client.fetch_all(LEADS, None, None, 10_000)
    assert "invalid JSON" in str(info.value) and "2 attempts" in str(info.value)


def test_slow_answer_beyond_read_timeout_is_retried(sandbox: Any, full_pulls: dict) -> None:
    client, sleep = client_for(sandbox, read_timeout=0.3)
    sandbox.web.faults.set("slow", page=1, seconds=1.0)
    result = client.fetch_all(INTERACTIONS, SINCE, UNTIL, 10_000)
    assert result.retries == 1 and len(sleep.calls) == 1
    assert result.rows == len(full_pulls[INTERACTIONS.name])


def test_slow_answers_every_time_end_in_a_timeout_error(sandbox: Any) -> None:
    client, _ = client_for(sandbox, read_timeout=0.3, max_retries=1)
    sandbox.web.faults.set("slow", count=2, seconds=0.8)
    with pytest.raises(SlateTransientError) as info:
        client.fetch_all(LEADS, None, None, 10_000)
    assert "timed out" in str(info.value) and "2 attempts" in str(info.value)
    assert_no_secrets(str(info.value), sandbox_config(sandbox))


def test_fetch_pages_yields_pages_in_order(sandbox: Any) -> None:
    client, _ = client_for(sandbox)
    pages = list(client.fetch_pages(INTERACTIONS, SINCE, UNTIL, 200))
    assert [p.number for p in pages] == list(range(1, len(pages) + 1))
    assert pages[0].after == NIL_GUID and all(p.after == q.last_key for q, p in itertools.pairwise(pages))
    assert len(pages[-1].rows) < 200 <= len(pages[0].rows)


# -- configuration -----------------------------------------------------------------------------------------------

EXTRA = {
    "queries": {
        "leads": {"id": "L", "h": "hl"},
        "interactions": {"id": "I", "h": "hi"},
        "persons": {"id": "P", "h": "hp"},
    }
}


def test_config_from_connection_fields() -> None:
    config = api_config_from_connection("http", "x.technolutions.net", None, "https", "svc", "pw", EXTRA)
    assert config.base_url == "https://x.technolutions.net"
    assert config.query_auth("leads") == QueryAuth("L", "hl")
    config = api_config_from_connection("http", "127.0.0.1", 8080, "http", "svc", "pw", json.dumps(EXTRA))
    assert config.base_url == "http://127.0.0.1:8080"
    config = api_config_from_connection(
        "slate", "https://u:p@x.edu/", None, None, "svc", "pw", {**EXTRA, "read_timeout": "30", "max_retries": 2}
    )
    assert config.base_url == "https://x.edu" and config.read_timeout == 30.0 and config.max_retries == 2


def test_config_repr_hides_secrets() -> None:
    config = api_config_from_connection("http", "x.edu", None, "https", "svc", "s3cret-pw", EXTRA)
    for text in (repr(config), str(config), repr(SlateClient(config))):
        assert "s3cret-pw" not in text and "'hl'" not in text and "'hi'" not in text
        assert "svc" in text and "'L'" in text


@pytest.mark.parametrize(
    ("fields", "named"),
    [
        ({"host": ""}, "'host'"),
        ({"login": None}, "'login'"),
        ({"password": ""}, "'password'"),
        ({"extra": {}}, "'queries'"),
        ({"extra": {"queries": {"leads": {"id": "L", "h": "x"}}}}, "'interactions'"),
        ({"extra": {"queries": {**EXTRA["queries"], "leads": {"id": "L"}}}}, "queries.leads.h"),
        (
            {"extra": {"queries": {k: v for k, v in EXTRA["queries"].items() if k != "persons"}}},
            "slate/sql/persons.sql",
        ),
        ({"extra": "{not json"}, "not valid JSON"),
        ({"extra": {**EXTRA, "read_timeout": "soon"}}, "'read_timeout'"),
        ({"schema": None, "conn_type": "ftp", "extra": {**EXTRA, "scheme": "ftp"}}, "scheme"),
    ],
)
def test_config_errors_name_the_field(fields: dict, named: str) -> None:
    args = {
        "conn_type": "http",
        "host": "x.edu",
        "port": None,
        "schema": "https",
        "login": "svc",
        "password": "pw",
        "extra": EXTRA,
    }
    with pytest.raises(SlateConfigError, match=None) as info:
        api_config_from_connection(**{**args, **fields})
    assert named in str(info.value)
    assert isinstance(info.value, SlateError) and isinstance(info.value, ValueError)


def test_key_order_defaults_to_sqlserver_and_text_is_an_explicit_option() -> None:
    assert api_config_from_connection("http", "x.edu", None, "https", "svc", "pw", EXTRA).key_order == "sqlserver"
    text = api_config_from_connection("http", "x.edu", None, "https", "svc", "pw", {**EXTRA, "key_order": " Text "})
    assert text.key_order == "text"
    with pytest.raises(SlateConfigError, match="key_order must be one of sqlserver, text, got 'binary'"):
        api_config_from_connection("http", "x.edu", None, "https", "svc", "pw", {**EXTRA, "key_order": "binary"})
    with pytest.raises(SlateConfigError, match="key_order"):
        replace(text, key_order="binary")


# -- answer shapes the sandbox never sends (pure checks of one decoded page) --------------------------------------


@pytest.mark.parametrize(
    ("payload", "match"),
    [
        ([], "JSON list, expected an object"),
        ({"rows": []}, "expected an object with a 'row' list"),
        ({"row": {"person_guid": "x"}}, "'row' is a JSON dict"),
        ({"row": [{"person_guid": "a"}, "b"]}, "row 1 is a JSON str"),
        ({"row": [{"person_guid": "a", "ref": {"v": 12}}]}, "row 0 column 'ref' holds a JSON dict"),
        ({"row": [{"person_guid": "a", "tags": ["test"]}]}, "row 0 column 'tags' holds a JSON list"),
    ],
)
def test_malformed_answers_are_errors(payload: Any, match: str) -> None:
    client = SlateClient(api_config_from_connection("http", "x.edu", None, "https", "svc", "pw", EXTRA))
    with pytest.raises(SlateResponseError, match=match.replace("(", r"\(").replace("{", r"\{")) as info:
        client._check_rows(LEADS, 4, payload)
    assert "page 4" in str(info.value)


def test_numbers_and_booleans_become_their_string_form_and_nested_extras_their_json_text() -> None:
    client = SlateClient(api_config_from_connection("http", "x.edu", None, "https", "svc", "pw", EXTRA))
    body = b'{"row": [{"person_guid": "a", "ref": 12, "x": 1.50, "big": 123456789012345678901234, "n": NaN}]}'
    payload = json.loads(body, parse_int=str, parse_float=str, parse_constant=str)  # as _decode reads it
    rows, _ = client._check_rows(LEADS, 1, payload)
    assert rows == [{"person_guid": "a", "ref": "12", "x": "1.50", "big": "123456789012345678901234", "n": "NaN"}]
    rows, columns = client._check_rows(
        LEADS, 1, {"row": [{"person_guid": "a", "tags": True, "opt": False, "extra": {"k": [1]}, "ref": None}]}
    )
    assert rows == [{"person_guid": "a", "tags": "true", "opt": "false", "extra": '{"k": [1]}'}]
    assert columns == ("person_guid", "tags", "opt", "extra")


def test_json_null_is_treated_as_an_omitted_column() -> None:
    client = SlateClient(api_config_from_connection("http", "x.edu", None, "https", "svc", "pw", EXTRA))
    rows, columns = client._check_rows(LEADS, 1, {"row": [{"person_guid": "a", "tags": None}, {"person_guid": "b"}]})
    assert rows == [{"person_guid": "a"}, {"person_guid": "b"}] and columns == ("person_guid",)


def test_page_larger_than_limit_is_allowed_only_for_ties() -> None:
    client = SlateClient(api_config_from_connection("http", "x.edu", None, "https", "svc", "pw", EXTRA))
    ties = [{"person_guid": k} for k in ("a", "b", "c", "c", "c")]
    client._check_limit(LEADS, 1, ties, 3)
    with pytest.raises(SlateResponseError, match="ignores its 'limit'"):
        client._check_limit(LEADS, 1, [{"person_guid": k} for k in "abcd"], 3)
    with pytest.raises(SlateResponseError, match="out of order"):
        client._check_cursor(LEADS, 2, [{"person_guid": "b"}, {"person_guid": "a"}], NIL_GUID)
    with pytest.raises(SlateSchemaError, match="lacks the key column"):
        client._check_cursor(LEADS, 2, [{"ref": "1"}], NIL_GUID)
