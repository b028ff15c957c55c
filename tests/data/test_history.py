"""Late, changed, merged and deleted records, pulled week by week from a sandbox with those dirt switches on."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from leadscore.data.clean import normalize_source
from leadscore.data.extract import extract_interval
from leadscore.data.store import ExtractStore, SourceMismatchError
from leadscore.intervals import Interval
from leadscore.sandbox.dirt import DirtRates
from leadscore.sandbox.generator import GeneratorConfig, generate, write_sandbox
from leadscore.settings import Settings
from leadscore.slate.client import SlateClient
from leadscore.slate.queries import INTERACTIONS, LEADS
from tests.slate.test_client import FakeSleep, sandbox_config

END = datetime(2026, 11, 23)
FIRST = (pd.Timestamp("2026-09-07"), pd.Timestamp("2026-09-14"))  # the full-history pull
WEEKS = [(FIRST[1] + pd.Timedelta(weeks=k), FIRST[1] + pd.Timedelta(weeks=k + 1)) for k in range(10)]
RATES = replace(DirtRates(), late_interactions=0.05, lead_changes=0.15, merged_persons=0.04, deleted_persons=0.03)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Any, pd.DataFrame, pd.DataFrame]]:
    from leadscore.sandbox.serve import start_sandbox

    folder = tmp_path_factory.mktemp("history") / "sandbox"
    data = generate(GeneratorConfig(leads=1500, seed=5, end=END, years=1.0, dirt=RATES))
    write_sandbox(data, folder)
    with start_sandbox(folder) as handle:
        yield handle, data.leads, data.interactions


@pytest.fixture(scope="module")
def pulled(world: tuple, tmp_path_factory: pytest.TempPathFactory) -> tuple[ExtractStore, Settings, dict]:
    """The store after a full pull and ten weekly pulls, with each week's summary."""
    handle, _, _ = world
    settings = Settings(home=tmp_path_factory.mktemp("home"))
    store = ExtractStore.from_settings(settings)
    client = SlateClient(sandbox_config(handle, max_retries=1), sleep=FakeSleep())
    summaries = {FIRST: extract_interval(client, store, settings, *FIRST)}
    for week in WEEKS:
        summaries[week] = extract_interval(client, store, settings, *week)
    return store, settings, summaries


def week_of(stamp: pd.Timestamp) -> tuple[pd.Timestamp, pd.Timestamp]:
    return next(w for w in WEEKS if w[0] <= stamp < w[1])


def stored_before(leads: pd.DataFrame) -> pd.DataFrame:
    """Persons the full pull stored: created before its end, still there at its end, not test-tagged."""
    return leads[
        (leads["_created"] < FIRST[1])
        & ~(leads["_gone"] < FIRST[1]).fillna(False)
        & leads["tags"].ne("test").fillna(True)
        & leads["origin_date"].notna()
    ].drop_duplicates("person_guid")


def test_a_late_interaction_counts_from_the_week_it_reaches_slate(world: tuple, pulled: tuple) -> None:
    _, _, interactions = world
    store, _, summaries = pulled
    stamp, arrived = interactions["_occurred"], interactions["_arrived"]
    gone = interactions["_person_gone"].notna()
    late = interactions[(stamp >= WEEKS[0][0]) & (arrived >= WEEKS[0][1]) & (arrived < WEEKS[-1][0]) & ~gone]
    late = late[[week_of(s) != week_of(a) for s, a in zip(late["_occurred"], late["_arrived"], strict=True)]]
    assert len(late) >= 5
    for _, row in late.head(20).iterrows():
        guid = str(row["interaction_guid"]).lower()
        own, arrival = week_of(row["_occurred"]), week_of(row["_arrived"])
        assert guid not in set(store.read_all(INTERACTIONS, as_of=own[1])["interaction_guid"])
        assert guid in set(store.read_all(INTERACTIONS, as_of=arrival[1])["interaction_guid"])
    assert sum(summaries[w].late_interactions for w in WEEKS) >= len(late)


def test_a_backfill_of_a_week_gives_what_the_week_saw(world: tuple, pulled: tuple) -> None:
    handle, _, _ = world
    store, settings, _ = pulled
    week = WEEKS[3]
    before = {q: store.read_all(q, as_of=week[1]) for q in (LEADS, INTERACTIONS)}
    files = {q: store.path(q, *week).read_bytes() for q in (LEADS, INTERACTIONS, "persons")}
    client = SlateClient(sandbox_config(handle, max_retries=1), sleep=FakeSleep())
    extract_interval(client, store, settings, *week)
    for q in (LEADS, INTERACTIONS):
        pd.testing.assert_frame_equal(store.read_all(q, as_of=week[1]), before[q])
    assert {q: store.path(q, *week).read_bytes() for q in files} == files


def test_a_changed_lead_is_pulled_again_and_read_with_its_new_values(world: tuple, pulled: tuple) -> None:
    _, leads, _ = world
    store, _, summaries = pulled
    people = stored_before(leads)
    changed = people[
        (people["_changed"] >= WEEKS[1][0])
        & (people["_changed"] < WEEKS[-1][1])
        & people["_gone"].isna()
        & people["_new_tags"].ne("test").fillna(True)
    ]
    source = changed[normalize_source(changed["_new_origin_source"]).ne(normalize_source(changed["origin_source"]))]
    college = changed[changed["_new_college_of_interest"].ne(changed["college_of_interest"]).fillna(True)]
    assert len(source) and len(college)
    for _, row in pd.concat([source.head(5), college.head(5)]).iterrows():
        guid, week = str(row["person_guid"]).lower(), week_of(row["_changed"])
        old = store.read_all(LEADS, as_of=week[0]).set_index("person_guid").loc[guid]
        new = store.read_all(LEADS, as_of=week[1]).set_index("person_guid").loc[guid]
        assert old["source"] == normalize_source(pd.Series([row["origin_source"]])).iloc[0]
        assert new["source"] == normalize_source(pd.Series([row["_new_origin_source"]])).iloc[0]
        assert (pd.isna(new["college"]) and pd.isna(row["_new_college_of_interest"])) or (
            new["college"] == row["_new_college_of_interest"]
        )
        assert new["updated"] == row["_changed"].floor("s") > old["updated"]
    assert sum(summaries[w].changed_leads for w in WEEKS) >= len(source.index.union(college.index))


def test_a_lead_tagged_test_later_is_never_scored_again(world: tuple, pulled: tuple) -> None:
    _, leads, _ = world
    store, _, _ = pulled
    people = stored_before(leads)
    tagged = people[(people["_changed"] >= WEEKS[0][0]) & (people["_changed"] < WEEKS[-1][1])]
    tagged = tagged[tagged["_new_tags"].eq("test").fillna(False) & tagged["_gone"].isna()]
    assert len(tagged)
    for _, row in tagged.iterrows():
        guid, week = str(row["person_guid"]).lower(), week_of(row["_changed"])
        assert guid in set(store.read_all(LEADS, as_of=week[0])["person_guid"])
        assert guid not in set(store.read_all(LEADS, as_of=week[1])["person_guid"])


def test_merged_and_deleted_persons_are_never_scored_again(world: tuple, pulled: tuple) -> None:
    from leadscore.tasks.training import scoring_pool

    _, leads, interactions = world
    store, settings, summaries = pulled
    people = stored_before(leads)
    gone = people[(people["_gone"] >= WEEKS[0][0]) & (people["_gone"] < WEEKS[-1][1])]
    merged, deleted = gone[gone["_merged_into"].notna()], gone[gone["_merged_into"].isna()]
    assert len(merged) and len(deleted)
    last = WEEKS[-1][1]
    pool = set(scoring_pool(settings, last)["person_guid"])
    every_lead = set(store.read_all(LEADS)["person_guid"])
    every_person = set(store.read_all(INTERACTIONS)["person_guid"])
    for _, row in gone.iterrows():
        guid, week = str(row["person_guid"]).lower(), week_of(row["_gone"])
        assert guid in set(store.read_all(LEADS, as_of=week[0])["person_guid"])  # known before
        assert guid not in set(store.read_all(LEADS, as_of=week[1])["person_guid"])
        assert guid not in pool and guid not in every_lead and guid not in every_person
        assert guid in set(store.dead_persons(week[1]))
    assert sum(summaries[w].gone_persons for w in WEEKS) >= len(gone)
    # A survivor keeps being scored, with the interactions Slate moved to it (those the overlap re-reads).
    row = merged.iloc[0]
    survivor = str(row["_merged_into"]).lower()
    moved = interactions[
        (interactions["person_guid"] == row["person_guid"])
        & (interactions["_occurred"] >= week_of(row["_gone"])[0] - pd.Timedelta(days=14))
        & (interactions["_arrived"] < last)
    ]
    stored = store.read_all(INTERACTIONS).set_index("interaction_guid")["person_guid"]
    for guid in moved["interaction_guid"].str.lower():
        assert stored.get(guid) == survivor


def test_a_run_against_another_source_stops_before_writing(world: tuple, tmp_path: Path) -> None:
    from leadscore.tasks.data import extract_week

    handle, _, _ = world
    settings = Settings(home=tmp_path / "home")
    config = sandbox_config(handle, max_retries=1)
    extract_week(settings, Interval(FIRST[0].to_pydatetime(), FIRST[1].to_pydatetime()), config)
    source = json.loads((settings.extracts_dir / "source.json").read_text())
    assert source == config.source() and set(source["queries"]) == {"leads", "interactions", "persons"}
    # The same sandbox on another port is the same source.
    moved = replace(config, base_url=config.base_url.replace("127.0.0.1", "localhost"))
    week = Interval(WEEKS[0][0].to_pydatetime(), WEEKS[0][1].to_pydatetime())
    extract_week(settings, week, moved)
    before = sorted(str(p) for p in settings.home_abs.rglob("*"))
    handle.web.clear_request_log()
    other = replace(config, base_url="https://example.technolutions.net")
    with pytest.raises(SourceMismatchError, match="make clean") as info:
        extract_week(settings, Interval(WEEKS[1][0].to_pydatetime(), WEEKS[1][1].to_pydatetime()), other)
    assert "example.technolutions.net" in str(info.value) and "LEADSCORE_HOME" in str(info.value)
    assert sorted(str(p) for p in settings.home_abs.rglob("*")) == before
    assert handle.web.request_log() == []  # stopped before any request
