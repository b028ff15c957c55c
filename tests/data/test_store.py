"""The per-interval extract store: layout, atomic replace, identical bytes, union of intervals, permissions."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pandas as pd
import pytest

from leadscore.data.clean import clean_interactions, clean_leads
from leadscore.data.store import ExtractStore, interval_name
from leadscore.data.tables import INTERACTION_COLUMNS, LEAD_COLUMNS
from leadscore.data.validate import validate
from leadscore.settings import Settings
from leadscore.slate.queries import INTERACTIONS, LEADS
from tests.data.test_validate import AS_OF, G, interaction_rows, lead_rows

W1 = (pd.Timestamp("2024-03-04"), pd.Timestamp("2024-03-11"))
W2 = (pd.Timestamp("2024-03-11"), pd.Timestamp("2024-03-18"))


def leads_frame(guids: list[str], updated: str, college: str = "Arts") -> pd.DataFrame:
    n = len(guids)
    raw = lead_rows(n, person_guid=guids, updated=[updated] * n, college_of_interest=[college] * n)
    return clean_leads(validate(LEADS, raw, AS_OF).valid)[0]


def interactions_frame(guids: list[str]) -> pd.DataFrame:
    raw = interaction_rows(len(guids), interaction_guid=guids)
    return clean_interactions(validate(INTERACTIONS, raw, AS_OF).valid)[0]


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_layout_and_roundtrip(tmp_path: Path) -> None:
    store = ExtractStore(tmp_path / "extracts", tmp_path / "quarantine", tmp_path / "dq")
    frame = leads_frame([G[2], G[0], G[1]], "2024-03-05T00:00:00")
    path = store.write(LEADS, *W1, frame.iloc[::-1])
    assert path == tmp_path / "extracts" / "leads" / "20240304_20240311.parquet"
    back = store.read("leads", *W1)
    assert list(back.columns) == list(LEAD_COLUMNS)
    assert back["person_guid"].tolist() == [G[0], G[1], G[2]]  # rows stored sorted by key
    pd.testing.assert_frame_equal(back, frame.sort_values("person_guid").reset_index(drop=True))
    assert store.intervals(LEADS) == [W1] and store.has_interval(LEADS, *W1)
    assert not store.has_interval(LEADS, *W2) and store.latest_end(INTERACTIONS) is None


def test_rewrite_gives_identical_bytes_and_leaves_no_temp_files(tmp_path: Path) -> None:
    store = ExtractStore(tmp_path / "extracts")
    frame = interactions_frame([G[5], G[3], G[4]])
    path = store.write(INTERACTIONS, *W1, frame)
    first = path.read_bytes()
    store.write(INTERACTIONS, *W1, frame.sample(frac=1, random_state=1))  # same rows, other order
    assert path.read_bytes() == first
    assert sorted(p.name for p in path.parent.iterdir()) == [path.name]


def test_rewrite_replaces_the_interval_whole(tmp_path: Path) -> None:
    store = ExtractStore(tmp_path / "extracts")
    store.write(INTERACTIONS, *W1, interactions_frame([G[1], G[2], G[3]]))
    store.write(INTERACTIONS, *W1, interactions_frame([G[9]]))
    assert store.read(INTERACTIONS, *W1)["interaction_guid"].tolist() == [G[9]]


def test_failed_write_keeps_the_previous_file(tmp_path: Path) -> None:
    store = ExtractStore(tmp_path / "extracts")
    path = store.write(INTERACTIONS, *W1, interactions_frame([G[1]]))
    before = path.read_bytes()
    with pytest.raises(KeyError, match="occurred"):
        store.write(INTERACTIONS, *W1, interactions_frame([G[2]]).drop(columns="occurred"))
    assert path.read_bytes() == before
    assert [p.name for p in path.parent.iterdir()] == [path.name]


def test_write_many_stages_all_then_replaces(tmp_path: Path) -> None:
    store = ExtractStore(tmp_path / "extracts")
    paths = store.write_many(
        *W1, {"leads": leads_frame([G[0]], "2024-03-05"), "interactions": interactions_frame([G[1]])}
    )
    assert paths["leads"].is_file() and paths["interactions"].is_file()
    with pytest.raises(KeyError):
        store.write_many(
            *W1, {"leads": leads_frame([G[7]], "2024-03-05"), "interactions": interactions_frame([G[8]]).iloc[:, :2]}
        )
    # The failing interactions frame stopped the batch before any file was replaced.
    assert store.read(LEADS, *W1)["person_guid"].tolist() == [G[0]]
    assert all(not p.name.endswith(".tmp") for p in (tmp_path / "extracts").rglob("*"))


def test_read_all_keeps_latest_lead_version_and_unions_interactions(tmp_path: Path) -> None:
    store = ExtractStore(tmp_path / "extracts")
    store.write(LEADS, *W1, leads_frame([G[0], G[1]], "2024-03-05T00:00:00", college="Old"))
    store.write(LEADS, *W2, leads_frame([G[1], G[2]], "2024-03-12T00:00:00", college="New"))
    store.write(INTERACTIONS, *W1, interactions_frame([G[10], G[11]]))
    store.write(INTERACTIONS, *W2, interactions_frame([G[12], G[11]]))
    leads = store.read_all(LEADS)
    assert leads["person_guid"].tolist() == [G[0], G[1], G[2]]
    assert leads["college"].tolist() == ["Old", "New", "New"]
    assert store.read_all(INTERACTIONS)["interaction_guid"].tolist() == [G[10], G[11], G[12]]
    assert store.read_all(LEADS, exclude=W2)["person_guid"].tolist() == [G[0], G[1]]
    assert store.read_all(LEADS, columns=["person_guid"])["person_guid"].tolist() == [G[0], G[1], G[2]]
    assert store.intervals(LEADS) == [W1, W2] and store.latest_end(LEADS) == W2[1]


def test_read_all_of_an_empty_store_has_the_contract(tmp_path: Path) -> None:
    store = ExtractStore(tmp_path / "extracts")
    assert list(store.read_all(INTERACTIONS).columns) == list(INTERACTION_COLUMNS)
    assert store.read_all(LEADS).empty and store.intervals(LEADS) == []


def test_permissions_of_files_and_dirs(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        store = ExtractStore(tmp_path / "home" / "extracts", tmp_path / "home" / "quarantine", tmp_path / "home" / "dq")
        extract = store.write(LEADS, *W1, leads_frame([G[0]], "2024-03-05"))
        quarantine = store.write_quarantine(
            LEADS, *W1, pd.DataFrame({"person_guid": ["x"], "reason": ["invalid_guid"]})
        )
        summary = store.write_summary(*W1, {"rows": 1})
    finally:
        os.umask(old)
    for f in (extract, quarantine, summary):
        assert mode(f) == 0o600, f
    for d in (extract.parent, extract.parent.parent, quarantine.parent, summary.parent, tmp_path / "home"):
        assert mode(d) == 0o700, d


def test_quarantine_and_summary_files(tmp_path: Path) -> None:
    store = ExtractStore.from_settings(Settings(home=tmp_path))
    assert store.root == tmp_path.resolve() / "extracts"
    frame = pd.DataFrame({"person_guid": ["x", "y"], "origin_date": ["0000-00-00", None], "reason": ["a", "b"]})
    path = store.write_quarantine("leads", *W1, frame)
    assert path == tmp_path.resolve() / "quarantine" / "leads" / "20240304_20240311.csv"
    assert pd.read_csv(path)["reason"].tolist() == ["a", "b"]
    store.write_summary(*W1, {"b": 2, "a": {"z": 1}})
    assert store.read_summary(*W1) == {"a": {"z": 1}, "b": 2}


def test_interval_names() -> None:
    assert interval_name("2024-03-04", "2024-03-11") == "20240304_20240311"
    aware = pd.Timestamp("2024-03-04T00:00:00+02:00")
    assert interval_name(aware, "2024-03-11T06:30:00") == "20240303T220000_20240311T063000"
    with pytest.raises(ValueError, match="before its end"):
        interval_name("2024-03-11", "2024-03-04")
    with pytest.raises(ValueError, match="unknown query"):
        ExtractStore(Path("/nonexistent")).path("applications", *W1)


def test_union_of_overlapping_intervals_keeps_one_row_per_interaction_the_later_one():
    import pandas as pd

    from leadscore.data.store import _union_interactions

    def part(guids, days, kind):
        return pd.DataFrame(
            {
                "interaction_guid": pd.array(guids, dtype="string"),
                "person_guid": pd.array(["p"] * len(guids), dtype="string"),
                "kind": pd.array([kind] * len(guids), dtype="string"),
                "detail": pd.array([None] * len(guids), dtype="string"),
                "occurred": pd.to_datetime([f"2026-10-{d:02d}" for d in days]).astype("datetime64[us]"),
            }
        )

    full = part(["a", "b", "c"], [1, 5, 9], "email_sent")  # a full-history pull up to the 10th
    backfilled = part(["c", "d"], [9, 12], "email_open")  # a week backfilled later, overlapping it
    later = part(["e"], [20], "ping")  # a disjoint week
    union = _union_interactions([full, backfilled, later], "interaction_guid").sort_values("interaction_guid")
    assert union["interaction_guid"].tolist() == ["a", "b", "c", "d", "e"]
    assert union.set_index("interaction_guid").loc["c", "kind"] == "email_open"  # the later interval wins
    disjoint = _union_interactions([full, later], "interaction_guid")
    assert len(disjoint) == 4
