"""The store's memory of time: first-seen stamps, what was known at a date, tombstones, the recorded source."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from leadscore.data.store import FIRST_SEEN, ExtractStore, SourceMismatchError
from leadscore.slate.queries import INTERACTIONS, LEADS, PERSONS
from tests.data.test_store import interactions_frame, leads_frame
from tests.data.test_validate import G

W1 = (pd.Timestamp("2024-03-04"), pd.Timestamp("2024-03-11"))
W2 = (pd.Timestamp("2024-03-11"), pd.Timestamp("2024-03-18"))
W3 = (pd.Timestamp("2024-03-18"), pd.Timestamp("2024-03-25"))


def keys(frame: pd.DataFrame, key: str = "interaction_guid") -> set[str]:
    return set(frame[key])


def seen(store: ExtractStore, query: str, interval: tuple) -> dict[str, pd.Timestamp]:
    table = pq.read_table(store.path(query, *interval)).to_pandas()
    key = "interaction_guid" if query == "interactions" else "person_guid"
    return dict(zip(table[key], table[FIRST_SEEN], strict=True))


def test_overlapping_weeks_keep_one_copy_and_know_when_each_row_arrived(tmp_path: Path) -> None:
    store = ExtractStore(tmp_path / "extracts")
    store.write(INTERACTIONS, *W1, interactions_frame([G[0], G[1]]))
    # Week 2 re-reads G[1] (overlap) and brings G[2], stamped in week 1 but reaching Slate late.
    store.write(INTERACTIONS, *W2, interactions_frame([G[1], G[2], G[3]]))
    assert seen(store, "interactions", W2) == dict.fromkeys([G[1], G[2], G[3]], W2[1])
    assert keys(store.read_all(INTERACTIONS, as_of=W1[1])) == {G[0], G[1]}
    both = store.read_all(INTERACTIONS, as_of=W2[1])
    assert keys(both) == {G[0], G[1], G[2], G[3]} and len(both) == 4  # one row per GUID
    assert keys(store.read_all(INTERACTIONS, as_of=W1[1] - pd.Timedelta(seconds=1))) == set()
    pd.testing.assert_frame_equal(store.read_all(INTERACTIONS), both)


def test_a_backfill_of_a_week_never_sees_what_arrived_after_it(tmp_path: Path) -> None:
    store = ExtractStore(tmp_path / "extracts")
    store.write(INTERACTIONS, *W1, interactions_frame([G[0], G[1]]))
    store.write(INTERACTIONS, *W2, interactions_frame([G[2]]))  # G[2]: late, first seen in week 2
    known_w1 = store.read_all(INTERACTIONS, as_of=W1[1])
    # Re-running week 1 now: Slate holds G[2] (late) and G[4] (stamped in week 1, later than any overlap).
    store.write(INTERACTIONS, *W1, interactions_frame([G[0], G[1], G[2], G[4]]))
    stamps = seen(store, "interactions", W1)
    assert stamps[G[0]] == stamps[G[1]] == W1[1]  # kept from the first run
    assert stamps[G[2]] == W2[1]  # a later interval brought it first: it keeps that interval's end
    assert stamps[G[4]] == W1[1]  # nothing later holds it: the interval's own end (documented)
    again = store.read_all(INTERACTIONS, as_of=W1[1])
    assert keys(again) == keys(known_w1) | {G[4]} and G[2] not in keys(again)


def test_the_first_write_of_an_interval_stamps_its_end_even_after_later_weeks(tmp_path: Path) -> None:
    store = ExtractStore(tmp_path / "extracts")
    store.write(INTERACTIONS, *W2, interactions_frame([G[1], G[2]]))
    store.write(INTERACTIONS, *W1, interactions_frame([G[1]]))  # a missed week, run for the first time later
    assert seen(store, "interactions", W1) == {G[1]: W1[1]}
    assert keys(store.read_all(INTERACTIONS, as_of=W1[1])) == {G[1]}


def test_a_changed_lead_is_the_latest_version_known_at_each_date(tmp_path: Path) -> None:
    store = ExtractStore(tmp_path / "extracts")
    store.write(LEADS, *W1, leads_frame([G[0], G[1]], "2024-03-05T00:00:00", college="Arts"))
    store.write(LEADS, *W2, leads_frame([G[0]], "2024-03-12T00:00:00", college="Nursing"))
    before = store.read_all(LEADS, as_of=W1[1]).set_index("person_guid")["college"]
    after = store.read_all(LEADS, as_of=W2[1]).set_index("person_guid")["college"]
    assert before.to_dict() == {G[0]: "Arts", G[1]: "Arts"}
    assert after.to_dict() == {G[0]: "Nursing", G[1]: "Arts"}
    # Re-reading the same version in an overlap changes nothing.
    store.write(LEADS, *W3, leads_frame([G[0]], "2024-03-12T00:00:00", college="Nursing"))
    pd.testing.assert_frame_equal(store.read_all(LEADS, as_of=W3[1]), store.read_all(LEADS, as_of=W2[1]))


def test_tombstoned_persons_leave_leads_and_interactions_from_their_week_on(tmp_path: Path) -> None:
    store = ExtractStore(tmp_path / "extracts")
    store.write(LEADS, *W1, leads_frame([G[100], G[101]], "2024-03-05T00:00:00"))
    store.write(INTERACTIONS, *W1, interactions_frame([G[0], G[1]]))  # persons G[100], G[101]
    store.write(PERSONS, *W2, pd.DataFrame({"person_guid": pd.Series([G[101]], dtype="string")}))
    assert keys(store.read_all(LEADS, as_of=W1[1]), "person_guid") == {G[100], G[101]}
    for as_of in (W2[1], None):
        assert keys(store.read_all(LEADS, as_of=as_of), "person_guid") == {G[100]}
        assert set(store.read_all(INTERACTIONS, as_of=as_of)["person_guid"]) == {G[100]}
        assert set(store.read_all(LEADS, as_of=as_of, columns=["person_guid"])["person_guid"]) == {G[100]}
    assert list(store.dead_persons(W2[1])) == [G[101]] and not len(store.dead_persons(W1[1]))


def test_files_written_before_first_seen_read_as_seen_at_their_end(tmp_path: Path) -> None:
    store = ExtractStore(tmp_path / "extracts")
    path = store.path(INTERACTIONS, *W2)
    path.parent.mkdir(parents=True)
    pq.write_table(pa.Table.from_pandas(interactions_frame([G[7]]), preserve_index=False), path)
    assert keys(store.read_all(INTERACTIONS, as_of=W2[1] - pd.Timedelta(days=1))) == set()
    assert keys(store.read_all(INTERACTIONS, as_of=W2[1])) == {G[7]}
    store.write(INTERACTIONS, *W2, interactions_frame([G[7]]))  # a re-run keeps the legacy stamp
    assert seen(store, "interactions", W2) == {G[7]: W2[1]}


SANDBOX = {"host": "127.0.0.1", "queries": {"leads": "l-1", "interactions": "i-1"}}


def test_the_store_is_bound_to_its_source(tmp_path: Path) -> None:
    store = ExtractStore(tmp_path / "extracts")
    store.bind_source(SANDBOX)
    store.bind_source({"host": "x.technolutions.net", "queries": {"leads": "l-9"}})  # no extract yet: rebinds
    assert store.read_source()["host"] == "x.technolutions.net"
    store.bind_source(SANDBOX)
    store.write(LEADS, *W1, leads_frame([G[0]], "2024-03-05T00:00:00"))
    store.bind_source({**SANDBOX, "queries": {**SANDBOX["queries"], "persons": "p-1"}})  # a new query is added
    assert store.read_source()["queries"] == {"leads": "l-1", "interactions": "i-1", "persons": "p-1"}
    before = sorted(p.name for p in store.root.rglob("*"))
    for other in (
        {"host": "x.technolutions.net", "queries": SANDBOX["queries"]},
        {"host": "127.0.0.1", "queries": {"leads": "l-2", "interactions": "i-1"}},
    ):
        with pytest.raises(SourceMismatchError) as info:
            store.bind_source(other)
        assert "LEADSCORE_HOME" in str(info.value) and "make clean" in str(info.value)
    assert sorted(p.name for p in store.root.rglob("*")) == before
    assert json.loads(store.source_path.read_text())["host"] == "127.0.0.1"


def test_a_full_history_pull_is_known_from_each_rows_own_stamp(tmp_path):
    """The first (full-history) pull says what Slate held, not when it arrived: training or a backfill as of an
    earlier date sees the history as it stood then; later weekly pulls record arrival at their interval's end."""
    import numpy as np

    from leadscore.data.seen import SeenLookup
    from leadscore.data.store import ExtractStore

    store = ExtractStore(tmp_path / "extracts")
    end = pd.Timestamp("2026-11-16")
    rows = pd.DataFrame(
        {
            "interaction_guid": ["a", "b", "c"],
            "occurred": pd.to_datetime(["2025-01-02 10:00", "2026-11-15 23:00", None]),
        }
    )
    full = SeenLookup(store, "interactions", pd.Timestamp("2026-11-09"), end, full_history=True).assign(rows)
    expected = ["2025-01-02T10:00", "2026-11-15T23:00", end.isoformat()]
    assert list(full) == [np.datetime64(pd.Timestamp(t), "us") for t in expected]
    weekly = SeenLookup(store, "interactions", pd.Timestamp("2026-11-09"), end).assign(rows)
    assert (weekly == np.datetime64(end, "us")).all()
