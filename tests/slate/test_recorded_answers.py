"""Recorded-shape Slate answers (tests/resources/slate_answers/) through client -> validate -> clean.

The answers hold the value formats real instances send: datetimes with ``Z`` or ``+hh:mm``/``-hhmm`` offsets and
1-7 fractional digits, naive stamps in the instance's zone (America/New_York, both DST changes), GUIDs in upper case
and in braces, JSON numbers and booleans where strings were expected, and "Include NULL Values" answers with ``null``
and ``""``. A tiny real HTTP server on 127.0.0.1 serves them as Slate would (the leads answer in two pages, keys in
SQL Server order); ``expected.json`` states each row's outcome: its parsed values or its named quarantine reason.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pandas as pd
import pytest

from leadscore.data.clean import clean_interactions, clean_leads
from leadscore.data.validate import validate
from leadscore.slate.client import SlateClient
from leadscore.slate.connections import QueryAuth, SlateApiConfig
from leadscore.slate.keyorder import NIL_GUID
from leadscore.slate.queries import INTERACTIONS, LEADS

ANSWERS = Path(__file__).resolve().parents[1] / "resources" / "slate_answers"
EXPECTED = json.loads((ANSWERS / "expected.json").read_text())
IDS = {"leads": "0b8f6f4e-1d1c-4c55-9d3a-5a0f4c1e2d01", "interactions": "0b8f6f4e-1d1c-4c55-9d3a-5a0f4c1e2d02"}


def _canonical(guid: str) -> str:
    return guid.strip().lower().strip("{}")


class RecordedSlate:
    """Serves the recorded answers at /manage/query/run: leads page 1, then page 2 after its last key."""

    def __init__(self) -> None:
        self.requests: list[dict[str, str]] = []
        pages = [json.loads((ANSWERS / f"leads.page{i}.json").read_text())["row"] for i in (1, 2)]
        self.page1_last = _canonical(pages[0][-1]["person_guid"])
        self.bodies = {
            ("leads", None): (ANSWERS / "leads.page1.json").read_bytes(),
            ("leads", self.page1_last): (ANSWERS / "leads.page2.json").read_bytes(),
            ("interactions", None): (ANSWERS / "interactions.json").read_bytes(),
        }
        service = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                return

            def do_GET(self) -> None:
                args = {k: v[-1] for k, v in parse_qs(urlsplit(self.path).query).items()}
                service.requests.append(args)
                name = next((n for n, i in IDS.items() if i == args.get("id")), None)
                after = _canonical(args["after"]) if "after" in args else None
                after = None if after == NIL_GUID else after  # page 1: the nil GUID, or no cursor at all
                body = service.bodies.get((name, after))
                status = 200 if body is not None else 400
                body = body if body is not None else b'{"error": "no recorded answer"}'
                self.send_response(status)
                self.send_header("Content-Type", "application/json; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"


@pytest.fixture(scope="module")
def slate() -> Iterator[RecordedSlate]:
    server = RecordedSlate()
    server.thread.start()
    yield server
    server.httpd.shutdown()
    server.httpd.server_close()


@pytest.fixture(scope="module")
def answers(slate: RecordedSlate) -> dict[str, Any]:
    config = SlateApiConfig(
        base_url=slate.url,
        username="svc",
        password="pw",
        queries={name: QueryAuth(id=qid, h="h" * 32) for name, qid in IDS.items()},
        key_order="sqlserver",
        max_retries=0,
    )
    zone, since, until = EXPECTED["timezone"], pd.Timestamp(EXPECTED["since"]), pd.Timestamp(EXPECTED["until"])
    page_sizes = {"leads": EXPECTED["page_size"], "interactions": 1_000}  # leads in two pages, interactions in one
    with SlateClient(config) as client:
        fetched = {
            spec.name: client.fetch_all(spec, since, until, page_sizes[spec.name], timezone=zone)
            for spec in (LEADS, INTERACTIONS)
        }
    results = {
        spec.name: validate(spec, fetched[spec.name].frame, not_after=until, timezone=zone)
        for spec in (LEADS, INTERACTIONS)
    }
    return {"fetched": fetched, "results": results}


def test_window_is_sent_as_the_instance_wall_time_and_pages_follow_the_cursor(slate, answers) -> None:
    leads = [r for r in slate.requests if r["id"] == IDS["leads"]]
    # 2026-01-01T00:00Z is 19:00 EST the day before; 2026-11-23T00:00Z likewise.
    assert {(r["since"], r["until"]) for r in slate.requests} == {("2025-12-31T19:00:00", "2026-11-22T19:00:00")}
    assert len(leads) == 2 and _canonical(leads[1]["after"]) == slate.page1_last
    assert answers["fetched"]["leads"].pages == 2 and answers["fetched"]["leads"].rows == len(EXPECTED["leads"])


def test_numbers_booleans_and_nulls_arrive_as_strings_or_omitted(answers) -> None:
    frame = answers["fetched"]["leads"].frame
    rows = {r["person_guid"]: r for r in frame.to_dict("records")}
    by_case = {e["case"]: rows[raw] for raw, e in EXPECTED["leads"].items()}
    assert by_case["ref as a JSON number"]["ref"] == "100010"
    assert by_case["ref as a JSON float with a zero fraction"]["ref"] == "100011.0"  # the exact wire text
    assert by_case["JSON number with a fraction in an int column"]["ref"] == "12.5"
    boolean = by_case["JSON boolean in a varchar column and in an extra bit column"]
    assert boolean["college_of_interest"] == "false" and boolean["emailable"] == "true"
    assert pd.isna(by_case["Include NULL Values: optional columns present as null"]["tags"])
    assert by_case["Include NULL Values: optional columns present as empty strings"]["tags"] == ""
    assert all(isinstance(v, str) or pd.isna(v) for r in rows.values() for v in r.values())


@pytest.mark.parametrize("query", [LEADS, INTERACTIONS], ids=lambda q: q.name)
def test_each_recorded_row_is_parsed_or_quarantined_with_its_named_reason(answers, query) -> None:
    result = answers["results"][query.name]
    raw = answers["fetched"][query.name].frame
    expected = EXPECTED[query.name]
    assert result.rows_in == len(expected) == len(raw)
    quarantined = dict(zip(result.quarantined[query.key], result.quarantined["reason"], strict=True))
    where = dict(zip(result.quarantined[query.key], result.quarantined["column"], strict=True))
    valid = result.valid.assign(raw_key=raw.loc[result.valid.index, query.key].to_numpy()).set_index("raw_key")
    for raw_key, outcome in expected.items():
        if "reason" in outcome:
            assert quarantined.get(raw_key) == outcome["reason"], outcome["case"]
            assert where[raw_key] == outcome["column"], outcome["case"]
            continue
        assert raw_key not in quarantined, f"{outcome['case']}: quarantined as {quarantined.get(raw_key)}"
        row = valid.loc[raw_key]
        assert row[query.key] == outcome["canonical"], outcome["case"]  # lower-case, bare
        if "person" in outcome:
            assert row["person_guid"] == outcome["person"], outcome["case"]
        for column, value in outcome["values"].items():
            got = row[column]
            if value is None:
                assert pd.isna(got), f"{outcome['case']}: {column}={got!r}"
            elif query.column(column).slate_type == "datetime":
                assert got == pd.Timestamp(value), f"{outcome['case']}: {column}={got} != {value} (UTC)"
            else:
                assert got == value, f"{outcome['case']}: {column}={got!r}"
    assert sum(result.counts_by_reason.values()) == sum("reason" in e for e in expected.values())
    if query is LEADS:
        assert result.extra_columns == {"emailable": 1}  # the JSON boolean's unexpected column, dropped


def test_cleaned_rows_hold_canonical_guids_that_join(answers) -> None:
    leads, _ = clean_leads(answers["results"]["leads"].valid)
    interactions, _ = clean_interactions(answers["results"]["interactions"].valid)
    for guids in (leads["person_guid"], interactions["person_guid"], interactions["interaction_guid"]):
        assert guids.str.fullmatch(r"[0-9a-f]{8}(-[0-9a-f]{4}){3}-[0-9a-f]{12}").all()
    # upper-case and braced person GUIDs of interactions find their lead: the store, features and the score file
    # (which writes the store's person_guid) all use this one form
    assert set(interactions["person_guid"]) <= set(leads["person_guid"])
    assert str(leads["origin_date"].dtype) == "datetime64[us]" and leads["origin_date"].notna().all()
