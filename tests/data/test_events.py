"""The DuckDB event reader: the store read straight from Parquet equals ``ExtractStore.read_all`` + the frame path."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from leadscore.data.events import EventReadError, read_events, stored_interactions
from leadscore.data.features import FeatureInputError, features_as_of, features_at
from leadscore.data.store import FIRST_SEEN, ExtractStore
from leadscore.slate.queries import INTERACTIONS, PERSONS
from tests.data.test_features import make_interactions, make_leads

W1 = (pd.Timestamp("2024-01-01"), pd.Timestamp("2024-03-04"))  # a full-history pull
W2 = (pd.Timestamp("2024-02-26"), pd.Timestamp("2024-03-11"))  # a week re-reading a week before it
W3 = (pd.Timestamp("2024-03-11"), pd.Timestamp("2024-03-18"))  # written before first_seen existed
PERSON = [f"p{i}" for i in range(6)]
KINDS = ["email_sent", "email_open", "email_click", "email_optout", "ping", "activity", "event_registered"]
DETAILS = ["/apply/now", "/visit", "/financial-aid", "/programs/x", "/news", " Phone Call ", "chat", "x", None]


def _rows(rng: np.random.Generator, n: int, start: pd.Timestamp, end: pd.Timestamp, prefix: str) -> pd.DataFrame:
    seconds = rng.integers(0, int((end - start).total_seconds()), n)
    frame = make_interactions(
        [
            (str(rng.choice(PERSON)), str(rng.choice(KINDS)), DETAILS[rng.integers(len(DETAILS))], start + s * SEC)
            for s in seconds
        ]
    )
    frame["interaction_guid"] = pd.Series([f"{prefix}{i}" for i in range(n)], dtype="string")
    return frame


SEC = pd.Timedelta(seconds=1)


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> ExtractStore:
    """Overlapping intervals with repeated GUIDs whose later copy differs, late rows, a tombstone, a legacy file."""
    rng = np.random.default_rng(5)
    store = ExtractStore(tmp_path_factory.mktemp("events") / "extracts")
    full = _rows(rng, 300, W1[0] - 30 * pd.Timedelta(days=1), W1[1], "a")
    full[FIRST_SEEN] = full["occurred"]  # a full-history pull: known from each row's own stamp
    full.loc[full.index[:20], FIRST_SEEN] = W1[1]  # some only known at the pull's end
    store.write(INTERACTIONS, *W1, full)
    week = _rows(rng, 80, W2[0], W2[1], "b")
    again = full[full["occurred"] >= W2[0]].head(25).drop(columns=[FIRST_SEEN])
    again["kind"] = "email_click"  # the later interval's copy wins, whatever it holds
    week = pd.concat([week, again], ignore_index=True)
    late = _rows(rng, 15, W1[0], W2[0], "late")  # stamped long before, arriving with the week
    week = pd.concat([week, late], ignore_index=True)
    week[FIRST_SEEN] = W2[1]
    store.write(INTERACTIONS, *W2, week)
    legacy = _rows(rng, 40, W3[0], W3[1], "c")
    path = store.path(INTERACTIONS, *W3)
    pq.write_table(pa.Table.from_pandas(legacy, preserve_index=False), path)  # no first_seen column
    store.write(PERSONS, *W3, pd.DataFrame({"person_guid": pd.Series(["p5"], dtype="string")}))
    return store


CUTS = [W1[1] - 10 * pd.Timedelta(days=1), W1[1], W2[1] - SEC, W2[1], W3[1], None]


def _leads() -> pd.DataFrame:
    return make_leads([{"person_guid": p, "origin_date": W1[0] - 40 * pd.Timedelta(days=1)} for p in PERSON])


def _points(as_of: pd.Timestamp) -> pd.DataFrame:
    dates = [as_of - d * pd.Timedelta(days=1) for d in (0, 3, 12, 45)]
    return pd.DataFrame(
        {
            "person_guid": [p for p in PERSON for _ in dates],
            "as_of": pd.Series([d for _ in PERSON for d in dates], dtype="datetime64[us]"),
        }
    )


@pytest.mark.parametrize("cut", CUTS)
def test_features_from_the_store_equal_read_all_then_the_frame(store: ExtractStore, cut: pd.Timestamp | None) -> None:
    leads = _leads()
    points = _points(W3[1] if cut is None else cut)
    frame = store.read_all(INTERACTIONS, as_of=cut, sort=False)
    expected = features_at(points, leads, frame)
    got = features_at(points, leads, stored_interactions(store, cut))
    pd.testing.assert_frame_equal(got, expected)
    assert expected["email_sent"].sum() + expected["pings"].sum() > 0  # the cut leaves something to count


@pytest.mark.parametrize("cut", CUTS)
def test_the_event_rows_are_the_rows_read_all_returns(store: ExtractStore, cut: pd.Timestamp | None) -> None:
    leads = _leads()
    events = read_events(stored_interactions(store, cut), leads["person_guid"], ("ping", "activity"))
    frame = store.read_all(INTERACTIONS, as_of=cut)
    detail = frame["detail"].where(frame["kind"].isin(["ping", "activity"]))
    expected = sorted(
        zip(
            leads.set_index("person_guid").index.get_indexer(frame["person_guid"]),
            frame["occurred"].to_numpy(dtype="datetime64[us]").view("int64"),
            frame["kind"],
            detail.astype(object).where(detail.notna(), None),
            strict=True,
        )
    )
    got = sorted(
        zip(
            events.code,
            events.occurred_us,
            events.pair_kind[events.pair],
            events.pair_detail[events.pair],
            strict=True,
        )
    )
    assert got == expected
    assert "p5" not in set(frame["person_guid"]) or (cut is not None and cut < W3[1])


def test_the_later_copy_wins_and_tombstones_and_late_rows_apply(store: ExtractStore) -> None:
    leads = _leads()
    every = read_events(stored_interactions(store), leads["person_guid"], ())
    stored = sum(pq.read_metadata(store.path(INTERACTIONS, *iv)).num_rows for iv in (W1, W2, W3))
    dead_rows = int((store.read_all(INTERACTIONS, as_of=W2[1])["person_guid"] == "p5").sum())
    assert dead_rows > 0 and 5 not in set(every.code)  # the tombstone of p5 (week 3) drops its rows
    assert len(every.code) < stored - 25  # the 25 repeated GUIDs count once
    at_w1 = read_events(stored_interactions(store, W1[1]), leads["person_guid"], ())
    at_w2 = read_events(stored_interactions(store, W2[1]), leads["person_guid"], ())
    assert len(at_w2.code) - len(at_w1.code) == 80 + 15  # the week's new rows and its late arrivals; repeats once
    clicks_w1 = np.sum(at_w1.pair_kind[at_w1.pair] == "email_click")
    clicks_w2 = np.sum(at_w2.pair_kind[at_w2.pair] == "email_click")
    assert clicks_w2 > clicks_w1  # the week's copies (all clicks) replaced the pull's


def test_only_wanted_persons_are_read_and_codes_are_their_positions(store: ExtractStore) -> None:
    leads = _leads()
    wanted = np.array([False, True, False, True, False, False])
    some = read_events(stored_interactions(store), leads["person_guid"], (), wanted=wanted)
    assert set(some.code) == {1, 3}


def test_an_empty_store_and_an_empty_frame_give_no_events(tmp_path: Path) -> None:
    leads = _leads()
    empty = ExtractStore(tmp_path / "extracts")
    out = features_as_of(leads, stored_interactions(empty, W1[1]), W1[1])
    pd.testing.assert_frame_equal(out, features_as_of(leads, make_interactions([]), W1[1]))
    assert (out["email_sent"] == 0).all() and len(out) == len(PERSON)


def test_a_missing_timestamp_or_a_wrong_type_is_refused() -> None:
    leads = _leads()
    bad = make_interactions([("p0", "email_sent", "m", W1[0])])
    bad.loc[0, "occurred"] = pd.NaT
    with pytest.raises(FeatureInputError, match="1 missing timestamp"):
        features_as_of(leads, bad, W1[1])
    with pytest.raises(EventReadError, match="must be datetime64"):
        read_events(bad.astype({"occurred": "string"}), leads["person_guid"], ())
