"""Promise 3: bad input is caught, counted and explained.

CATALOG is one table of malformed rows and answers, each with its expected outcome: ``cleaned`` (kept, normalized,
counted where cleaning removes something), ``quarantined`` (with the named reason) or ``fails`` (a clear error).
Row cases go through validate + clean; answer cases go through the real sandbox web service. Property-based tests
(hypothesis) cover the parsers and ``features_as_of``.
"""

from __future__ import annotations

import uuid
from dataclasses import replace
from typing import Any

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from leadscore.data.clean import clean_interactions, clean_leads
from leadscore.data.features import features_as_of
from leadscore.data.tables import FEATURE_NUMERIC
from leadscore.data.validate import (
    QuarantineLimitError,
    check_quarantine_share,
    parse_datetime,
    parse_guid,
    parse_int,
    validate,
)
from leadscore.slate.client import SlateClient
from leadscore.slate.errors import SlateSchemaError
from leadscore.slate.queries import INTERACTIONS, LEADS
from tests.reliability.helpers import FakeSleep, client_for, sandbox_config

NOT_AFTER = pd.Timestamp("2026-11-23")
G1, G2 = "0a1b2c3d-0000-4000-8000-000000000001", "0a1b2c3d-0000-4000-8000-000000000002"
LEAD = {
    "person_guid": G1,
    "ref": "1001",
    "first_name": "Ada",
    "last_name": "Lovelace",
    "email": "ada@example.org",
    "origin_date": "2026-11-02T10:00:00",
    "origin_source": "Source",
    "college_of_interest": "Arts",
    "updated": "2026-11-02T10:00:00",
}
EVENT = {"interaction_guid": G2, "person_guid": G1, "kind": "email_open", "detail": "Fall", "occurred": "2026-11-03"}


def lead(**changes: Any) -> dict:
    row = {**LEAD, **changes}
    return {k: v for k, v in row.items() if v is not None}  # None = omitted (NULL)


def event(**changes: Any) -> dict:
    row = {**EVENT, **changes}
    return {k: v for k, v in row.items() if v is not None}


# (kind, query, rows, expected outcome, detail): detail is the quarantine reason, or a check of the cleaned output.
CATALOG: list[tuple[str, str, list[dict], str, Any]] = [
    ("int with letters", "leads", [lead(ref="12a")], "quarantined", "invalid_int"),
    ("int with commas/spaces", "leads", [lead(ref=" 1,234 ")], "cleaned", ("ref", 1234)),
    ("int as float string", "leads", [lead(ref="1234.0")], "cleaned", ("ref", 1234)),
    ("int with leading zeros", "leads", [lead(ref="00123")], "cleaned", ("ref", 123)),
    ("int overflowing int64", "leads", [lead(ref="9" * 30)], "quarantined", "invalid_int"),
    ("impossible calendar date", "leads", [lead(origin_date="2021-02-30T00:00:00")], "quarantined", "impossible_date"),
    ("zero date", "leads", [lead(origin_date="0000-00-00")], "quarantined", "impossible_date"),
    ("month 13", "interactions", [event(occurred="2026-13-01")], "quarantined", "impossible_date"),
    ("date in the future", "leads", [lead(origin_date="2099-01-01T00:00:00")], "quarantined", "impossible_date"),
    ("date as words", "leads", [lead(origin_date="yesterday")], "quarantined", "unparseable_date"),
    (
        "US date with AM/PM",
        "leads",
        [lead(origin_date="11/05/2026 3:04 PM")],
        "cleaned",
        ("origin_date", pd.Timestamp("2026-11-05T15:04:00")),
    ),
    ("required date omitted", "leads", [lead(origin_date=None)], "quarantined", "missing_origin_date"),
    ("required date blank", "leads", [lead(origin_date="   ")], "quarantined", "missing_origin_date"),
    ("required source omitted", "leads", [lead(origin_source=None)], "quarantined", "missing_origin_source"),
    ("updated omitted", "leads", [lead(updated=None)], "quarantined", "missing_updated"),
    ("GUID not a GUID", "leads", [lead(person_guid="not-a-guid")], "quarantined", "invalid_guid"),
    ("GUID upper case in braces", "leads", [lead(person_guid="{" + G1.upper() + "}")], "cleaned", ("person_guid", G1)),
    ("GUID with a BOM", "leads", [lead(person_guid="\ufeff" + G1)], "quarantined", "invalid_guid"),
    ("interaction without person", "interactions", [event(person_guid=None)], "quarantined", "missing_person_guid"),
    ("unknown interaction kind", "interactions", [event(kind="fax")], "quarantined", "unknown_kind"),
    ("kind in upper case", "interactions", [event(kind="EMAIL_OPEN")], "cleaned", ("kind", "email_open")),
    ("unknown source label", "leads", [lead(origin_source="radio ad")], "cleaned", ("source", "Radio Ad")),
    (
        "source label variant",
        "leads",
        [lead(origin_source="  ad hoc   DATA load ")],
        "cleaned",
        ("source", "Ad-Hoc Data Load"),
    ),
    (
        "per-college inquiry label",
        "leads",
        [lead(origin_source="Biology Inquiry")],
        "cleaned",
        ("source", "Inquiry Form"),
    ),
    ("exact duplicate rows", "leads", [lead(), lead()], "cleaned", ("duplicates", 1)),
    (
        "duplicates with conflicting values",
        "leads",
        [lead(college_of_interest="Arts"), lead(college_of_interest="Science", updated="2026-11-04T00:00:00")],
        "cleaned",
        ("college", "Science"),
    ),
    ("duplicate interaction GUIDs", "interactions", [event(), event(detail="other")], "cleaned", ("duplicates", 1)),
    ("test-tagged record", "leads", [lead(tags="VIP, Test")], "cleaned", ("test_dropped", 1)),
    (
        "control characters",
        "leads",
        [lead(college_of_interest="Arts\x00\tand\x1bSci")],
        "cleaned",
        ("college", "Arts  and Sci"),
    ),
    ("huge string", "leads", [lead(college_of_interest="x" * 200_000)], "cleaned", ("college", "x" * 200_000)),
    (
        "UTF-8 oddities",
        "leads",
        [lead(college_of_interest="Collège d’Été \u200b🎓 e\u0301")],
        "cleaned",
        ("college", "Collège d’Été \u200b🎓 e\u0301"),
    ),
    ("extra column", "leads", [lead(legacy_code="X")], "cleaned", ("extra_columns", {"legacy_code": 1})),
    ("personal fields present", "leads", [lead()], "cleaned", ("no_personal", True)),
    (
        "required column missing from the answer",
        "leads",
        [{k: v for k, v in lead(person_guid=g).items() if k != "origin_source"} for g in (G1, G2)],
        "fails",
        "missing_origin_source",
    ),
]


def run_rows(query: str, rows: list[dict]) -> tuple[Any, pd.DataFrame | None, Any]:
    spec = LEADS if query == "leads" else INTERACTIONS
    columns = list(dict.fromkeys([*spec.column_names, *(c for r in rows for c in r)]))
    raw = pd.DataFrame([{c: r.get(c) for c in columns} for r in rows], columns=columns).astype("str")
    result = validate(spec, raw, not_after=NOT_AFTER)
    if result.valid.empty:
        return result, None, None
    cleaned, stats = (clean_leads if query == "leads" else clean_interactions)(result.valid)
    return result, cleaned, stats


@pytest.mark.parametrize(("kind", "query", "rows", "outcome", "detail"), CATALOG, ids=[c[0] for c in CATALOG])
def test_catalog_of_malformed_rows(kind: str, query: str, rows: list[dict], outcome: str, detail: Any) -> None:
    result, cleaned, stats = run_rows(query, rows)
    assert len(result.valid) + len(result.quarantined) == len(rows)  # nothing dropped silently
    if outcome == "quarantined":
        assert result.counts_by_reason == {detail: len(rows)}
        assert not {"first_name", "last_name", "email"} & set(result.quarantined.columns)
    elif outcome == "fails":
        assert result.counts_by_reason == {detail: len(rows)}
        with pytest.raises(QuarantineLimitError, match=detail):
            check_quarantine_share(result, 0.02, query)
    else:
        assert result.quarantined.empty and cleaned is not None
        assert not {"first_name", "last_name", "email"} & set(cleaned.columns)
        name, expected = detail
        if name in ("duplicates", "test_dropped"):
            assert getattr(stats, name) == expected
        elif name == "extra_columns":
            assert result.extra_columns == expected and "legacy_code" not in cleaned.columns
        elif name == "no_personal":
            assert "Ada" not in cleaned.astype(str).to_numpy().ravel()
        else:
            assert len(cleaned) == 1 and cleaned[name].iloc[0] == expected


def test_catalog_size() -> None:
    assert len(CATALOG) + len(ANSWER_KINDS) >= 25


# Answer-level kinds, through the real web service.
ANSWER_KINDS = ("empty answer", "answer of a different query", "required column dropped by the server")


def test_empty_answer_is_an_empty_frame_not_an_error(sandbox: Any) -> None:
    result = client_for(sandbox).fetch_all(LEADS, "1995-01-01", "1995-01-08", 100)
    assert result.rows == 0 and list(result.frame.columns) == list(LEADS.column_names)
    assert validate(LEADS, result.frame).rows_in == 0


def test_answer_of_a_different_query_fails_clearly(sandbox: Any) -> None:
    config = sandbox_config(sandbox)
    swapped = replace(config, queries={**config.queries, "leads": config.queries["interactions"]})
    with pytest.raises(SlateSchemaError, match="query 'leads', page 1: required column") as info:
        SlateClient(swapped, sleep=FakeSleep()).fetch_all(LEADS, "2026-10-01", "2026-11-01", 100)
    assert "origin_date" in str(info.value)


def test_required_column_dropped_by_the_server_fails_clearly(sandbox: Any) -> None:
    sandbox.web.faults.set("drop_column", query="leads", column="updated")
    with pytest.raises(SlateSchemaError, match="'updated'"):
        client_for(sandbox).fetch_all(LEADS, "2026-10-01", "2026-11-01", 100)


# -- property-based ---------------------------------------------------------------------------------------------

FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FAST
@given(st.lists(st.text(max_size=30) | st.none(), max_size=20))
def test_parsers_never_raise_and_flag_every_present_unparsed_value(values: list[str | None]) -> None:
    series = pd.Series(values, dtype="object")
    stamps, unparseable, impossible = parse_datetime(series, NOT_AFTER)
    assert not (unparseable & impossible).any()
    present = series.astype("string").str.strip().fillna("") != ""
    assert ((stamps.notna() | unparseable | impossible) == present).all()
    ints, bad_int = parse_int(series)
    assert ((ints.notna() | bad_int) == present).all()
    guids, bad_guid = parse_guid(series)
    assert ((guids.notna() | bad_guid) == present).all()
    assert guids.dropna().str.fullmatch(r"[0-9a-f]{8}(-[0-9a-f]{4}){3}-[0-9a-f]{12}").all()


@FAST
@given(
    st.datetimes(min_value=pd.Timestamp("1990-01-01").to_pydatetime(), max_value=NOT_AFTER.to_pydatetime()),
    st.sampled_from(["%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S", "%m/%d/%Y %I:%M:%S %p", " %Y-%m-%dT%H:%M:%S "]),
)
def test_parse_datetime_round_trips(moment: Any, fmt: str) -> None:
    moment = moment.replace(microsecond=0)
    stamps, unparseable, impossible = parse_datetime(pd.Series([moment.strftime(fmt)]), NOT_AFTER)
    assert not unparseable[0] and not impossible[0] and stamps[0] == pd.Timestamp(moment)


@FAST
# Up to 10**15: parse_int caps digits at 18 *including* leading zeros, so "00" + 17 digits is refused (reported).
@given(st.integers(min_value=-(10**15), max_value=10**15), st.sampled_from(["{:d}", "{:,d}", " {:d} ", "{:d}.0"]))
def test_parse_int_round_trips(number: int, fmt: str) -> None:
    text = fmt.format(number)
    if number >= 0 and fmt == "{:d}":
        text = "00" + text
    parsed, bad = parse_int(pd.Series([text]))
    assert not bad[0] and parsed[0] == number


@FAST
@given(st.uuids(), st.sampled_from(["{}", "{{{}}}", " {} "]), st.booleans())
def test_parse_guid_round_trips(value: uuid.UUID, fmt: str, upper: bool) -> None:
    text = fmt.format(str(value).upper() if upper else str(value))
    parsed, bad = parse_guid(pd.Series([text]))
    assert not bad[0] and parsed[0] == str(value)


KINDS = ["email_sent", "email_open", "email_click", "ping", "activity", "event_registered", "event_attended"]
BASE = pd.Timestamp("2026-01-01")


def _tables(n_leads: int, events: list[tuple[int, int, int]]) -> tuple[pd.DataFrame, pd.DataFrame]:
    guids = [str(uuid.UUID(int=i + 1)) for i in range(n_leads)]
    leads = pd.DataFrame(
        {
            "person_guid": pd.Series(guids, dtype="string"),
            "ref": pd.Series(range(n_leads), dtype="Int64"),
            "origin_date": pd.Series([BASE + pd.Timedelta(days=i) for i in range(n_leads)], dtype="datetime64[us]"),
            "source": pd.Series(["Source"] * n_leads, dtype="string"),
            "college": pd.Series([None] * n_leads, dtype="string"),
            "application_created": pd.Series([pd.NaT] * n_leads, dtype="datetime64[us]"),
            "is_test": False,
            "updated": pd.Series([BASE] * n_leads, dtype="datetime64[us]"),
        }
    )
    rows = [
        (
            str(uuid.UUID(int=10_000 + i)),
            guids[who % n_leads],
            KINDS[k % len(KINDS)],
            "https://x.edu/apply" if KINDS[k % len(KINDS)] == "ping" else "phone call",
            BASE + pd.Timedelta(hours=h),
        )
        for i, (who, k, h) in enumerate(events)
    ]
    interactions = pd.DataFrame(rows, columns=["interaction_guid", "person_guid", "kind", "detail", "occurred"])
    interactions = interactions.astype({c: "string" for c in ["interaction_guid", "person_guid", "kind", "detail"]})
    interactions["occurred"] = interactions["occurred"].astype("datetime64[us]")
    return leads, interactions


EVENTS = st.lists(st.tuples(st.integers(0, 9), st.integers(0, 20), st.integers(0, 24 * 120)), max_size=60)
# Cumulative counts only: 30-day windows and rates may fall as time passes.
COUNTS = [c for c in FEATURE_NUMERIC if not c.startswith("days_") and not c.endswith(("_30d", "_rate"))]


@FAST
@given(EVENTS, EVENTS, st.integers(10 * 24, 100 * 24), st.integers(0, 20 * 24))
def test_features_as_of_ignore_the_future_and_grow_with_time(
    past: list, future: list, as_of_h: int, step_h: int
) -> None:
    as_of = BASE + pd.Timedelta(hours=as_of_h)
    leads, before = _tables(10, [(w, k, h % as_of_h) for w, k, h in past])
    _, later = _tables(10, [(w, k, as_of_h + h) for w, k, h in future])  # stamped at or after as_of
    later["interaction_guid"] = later["interaction_guid"].str.replace(
        "00000000-0000-0000-0000", "ffffffff-0000-0000-0000"
    )
    both = pd.concat([before, later], ignore_index=True)
    now = features_as_of(leads, before, as_of)
    pd.testing.assert_frame_equal(now, features_as_of(leads, both, as_of))  # events after as_of change nothing
    assert (now[list(FEATURE_NUMERIC)].to_numpy() >= 0).all()
    nxt = features_as_of(leads, both, as_of + pd.Timedelta(hours=step_h))
    common = now.merge(nxt, on="person_guid", suffixes=("", "_next"))
    for column in COUNTS:
        assert (common[column + "_next"] >= common[column]).all(), column
