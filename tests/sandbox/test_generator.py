"""Tests of the sandbox generator: rates, determinism, dirt accounting, the true probability and the wire contract."""

from __future__ import annotations

import re
import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest

from leadscore.sandbox.dirt import DirtRates
from leadscore.sandbox.generator import (
    EXTRA_COLUMNS,
    URL_BASE,
    GeneratorConfig,
    SandboxData,
    default_end,
    generate,
    generate_command,
    read_sandbox,
    true_probability,
    write_sandbox,
)
from leadscore.sandbox.wirefmt import iso_seconds
from leadscore.slate.queries import ACTIVITY_CODES, INTERACTION_KINDS, INTERACTIONS, LEADS

END = datetime(2025, 6, 2)
LEAD_WIRE = [c for c in LEADS.column_names if c != "updated"]
CANONICAL_SOURCES = {
    "Source",
    "Ad-Hoc Data Load",
    "Vendor Lead",
    "Event Registration",
    "Campus Visit",
}
UUID4 = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")


@pytest.fixture(scope="module")
def big() -> SandboxData:
    return generate(GeneratorConfig(leads=20_000, seed=11, end=END))


@pytest.fixture(scope="module")
def clean() -> SandboxData:
    return generate(GeneratorConfig(leads=3_000, seed=5, end=END, dirt=DirtRates.none()))


def _iso(series: pd.Series) -> pd.Series:
    formatted = iso_seconds(series.to_numpy("datetime64[us]")).to_pylist()
    return pd.Series(formatted, index=series.index, dtype="str")


def _is_canonical(source: str) -> bool:
    return source in CANONICAL_SOURCES or bool(re.fullmatch(r"College of [A-Z][A-Za-z ]+ Inquiry", source))


def test_wire_columns_match_the_contract(big: SandboxData) -> None:
    history = ["_changed", "_new_origin_source", "_new_college_of_interest", "_new_tags", "_gone", "_merged_into"]
    assert list(big.leads.columns) == [*LEAD_WIRE, *EXTRA_COLUMNS, "_created", "_app_created", *history]
    assert list(big.interactions.columns) == [
        *INTERACTIONS.column_names,
        *("_occurred", "_arrived", "_person_gone", "_merged_into"),
    ]
    for frame, wire in ((big.leads, [*LEAD_WIRE, *EXTRA_COLUMNS]), (big.interactions, INTERACTIONS.column_names)):
        for col in wire:
            assert frame[col].dtype == "str", col
    for frame, col in ((big.leads, "_created"), (big.leads, "_app_created"), (big.interactions, "_occurred")):
        assert str(frame[col].dtype) == "datetime64[us]", col
    assert big.leads["person_guid"].str.fullmatch(UUID4.pattern).all()
    assert big.interactions["interaction_guid"].str.fullmatch(UUID4.pattern).all()
    assert all(uuid.UUID(g).version == 4 for g in big.leads["person_guid"].head(100))
    assert big.leads[["person_guid", "origin_source", "_created"]].notna().all().all()
    assert set(big.interactions["person_guid"]) <= set(big.leads["person_guid"])


def test_interaction_details_follow_their_kind(clean: SandboxData) -> None:
    inter = clean.interactions
    assert set(inter["kind"]) <= set(INTERACTION_KINDS)
    assert set(inter["kind"]) >= {"email_sent", "email_open", "email_click", "ping", "activity", "event_registered"}
    pings = inter.loc[inter["kind"] == "ping", "detail"]
    assert pings.str.startswith(URL_BASE + "/").all()
    assert pings.str.contains("/apply/").any()
    assert set(inter.loc[inter["kind"] == "activity", "detail"]) <= set(ACTIVITY_CODES)
    sent = set(inter.loc[inter["kind"] == "email_sent", "detail"])
    assert set(inter.loc[inter["kind"].isin(["email_open", "email_click"]), "detail"]) <= sent
    assert inter.loc[inter["kind"].str.startswith("event_"), "detail"].str.fullmatch(r".+ \d{4}-\d{2}-\d{2}").all()


def test_conversion_rates_match_targets(big: SandboxData) -> None:
    truth = big.truth
    days = (truth["true_app_time"] - truth["created"]).dt.total_seconds() / 86_400
    within_year = days.le(365).to_numpy()  # NaT (never applies) compares False
    group = truth["source_group"].to_numpy()
    assert within_year.mean() == pytest.approx(0.07, abs=0.012)
    assert within_year[group == "list"].mean() == pytest.approx(0.02, abs=0.006)
    assert within_year[group == "inquiry"].mean() == pytest.approx(0.20, abs=0.03)
    assert (group == "list").mean() == pytest.approx(0.70, abs=0.02)
    assert truth["college"].isna().mean() == pytest.approx(0.17, abs=0.015)
    # most conversions come in the first weeks
    assert (days.le(30).sum() / within_year.sum()) > 0.6
    realized = big.meta["realized"]
    assert realized["conversion_within_365d"] == pytest.approx(within_year.mean())


def test_emails_per_lead_follow_the_deployment_figures(big: SandboxData) -> None:
    realized = big.meta["realized"]
    assert 15.0 <= realized["emails_per_lead_full_life_mean"] <= 21.0
    assert 8.0 <= realized["emails_per_lead_full_life_median"] <= 12.0
    assert realized["leads_with_full_email_life"] > 5_000


def test_interest_drives_engagement(big: SandboxData) -> None:
    inter = big.interactions
    z = big.truth.set_index("person_guid")["z"]
    opens = inter.loc[inter["kind"] == "email_open", "person_guid"].value_counts()
    sent = inter.loc[inter["kind"] == "email_sent", "person_guid"].value_counts()
    rate = (opens.reindex(sent.index, fill_value=0) / sent).rename("rate")
    frame = pd.concat([rate, z.reindex(rate.index)], axis=1)
    assert frame["rate"].corr(frame["z"]) > 0.3


def test_seeded_runs_are_identical_and_seeds_differ() -> None:
    config = GeneratorConfig(leads=2_000, seed=3, end=END)
    a, b = generate(config), generate(config)
    pd.testing.assert_frame_equal(a.leads, b.leads)
    pd.testing.assert_frame_equal(a.interactions, b.interactions)
    pd.testing.assert_frame_equal(a.truth, b.truth)
    assert a.meta == b.meta
    c = generate(replace(config, seed=4))
    assert not set(a.leads["person_guid"]) & set(c.leads["person_guid"])
    assert not a.truth["z"].equals(c.truth["z"])


def test_dirt_counts_match_meta_and_settings(big: SandboxData) -> None:
    counts = big.meta["dirt_counts"]
    rates = DirtRates()
    leads = big.leads
    assert len(leads) - leads["person_guid"].nunique() == counts["duplicate_rows"]
    base = leads.drop_duplicates()
    assert len(base) == big.meta["leads"] == len(big.truth)
    origin_dirty = base["origin_date"].ne(_iso(base["_created"])).fillna(True)
    assert base["origin_date"].isna().sum() == counts["missing_origin_date"]
    alt = base["origin_date"].str.fullmatch(r"\d\d/\d\d/\d{4} \d\d:\d\d").fillna(False)
    assert alt.sum() == counts["alt_date_format"]
    assert origin_dirty.sum() == counts["missing_origin_date"] + counts["alt_date_format"] + counts["impossible_dates"]
    assert (~base["origin_source"].map(_is_canonical)).sum() == counts["source_label_variants"]
    assert (~base["ref"].str.fullmatch(r"\d+")).sum() == counts["odd_numeric_strings"]
    assert base["tags"].eq("test").sum() == counts["test_tagged"] == big.truth["is_test"].sum()
    assert counts["extra_columns"] == len(EXTRA_COLUMNS)

    inter = big.interactions
    assert len(inter) - inter["interaction_guid"].nunique() == counts["interaction_duplicates"]
    ibase = inter.drop_duplicates()
    assert (~ibase["kind"].isin(list(INTERACTION_KINDS))).sum() == counts["unknown_kinds"]
    bad = ibase["occurred"].ne(_iso(ibase["_occurred"])).fillna(True)
    assert bad.sum() == counts["interaction_bad_dates"]

    n, m = len(base), len(ibase)
    for name, rows in (
        [(k, n) for k in ("duplicate_rows", "source_label_variants", "odd_numeric_strings")]
        + [(k, n) for k in ("alt_date_format", "test_tagged")]
        + [(k, m) for k in ("interaction_duplicates", "interaction_bad_dates")]
    ):
        rate = getattr(rates, name)
        se = np.sqrt(rate * (1 - rate) / rows)
        assert abs(counts[name] / rows - rate) < 5 * se + 1e-9, name


def test_zero_dirt_gives_clean_data(clean: SandboxData) -> None:
    leads, inter = clean.leads, clean.interactions
    assert not set(EXTRA_COLUMNS) & set(leads.columns)
    assert leads["person_guid"].is_unique and inter["interaction_guid"].is_unique
    assert leads["origin_date"].eq(_iso(leads["_created"])).all()
    applied = leads["_app_created"].notna()
    assert leads.loc[applied, "application_created"].eq(_iso(leads.loc[applied, "_app_created"])).all()
    assert leads.loc[~applied, "application_created"].isna().all()
    assert leads["origin_source"].map(_is_canonical).all()
    assert leads["ref"].str.fullmatch(r"\d+").all()
    assert not leads["tags"].eq("test").any()
    assert inter["kind"].isin(list(INTERACTION_KINDS)).all()
    assert inter["occurred"].eq(_iso(inter["_occurred"])).all()
    assert all(v == 0 for v in clean.meta["dirt_counts"].values())


def test_nothing_happens_after_end(big: SandboxData) -> None:
    end = pd.Timestamp(END)
    assert (big.leads["_created"] < end).all()
    assert (big.leads["_app_created"].dropna() < end).all()
    assert (big.interactions["_occurred"] < end).all()
    assert (big.truth["true_app_time"].dropna() >= end).any()  # the future exists in truth only
    start = pd.Timestamp(big.meta["start"])
    assert (big.leads["_created"] >= start).all()


def test_no_email_after_application_or_before_origin(big: SandboxData) -> None:
    inter = big.interactions.drop_duplicates()
    leads = big.leads.drop_duplicates("person_guid").set_index("person_guid")
    sent = inter.loc[inter["kind"] == "email_sent"]
    app = leads["_app_created"].reindex(sent["person_guid"]).to_numpy()
    occurred = sent["_occurred"].to_numpy()
    has_app = ~np.isnat(app)
    assert (occurred[has_app] < app[has_app]).all()
    created = leads["_created"].reindex(inter["person_guid"]).to_numpy()
    assert (inter["_occurred"].to_numpy() >= created).all()


def test_seasonal_cycle_peaks_in_fall(big: SandboxData) -> None:
    months = big.truth["created"].dt.month
    fall = months.isin([9, 10, 11]).mean()
    spring = months.isin([3, 4, 5]).mean()
    assert fall > 1.5 * spring


def test_true_probability_matches_simulated_outcomes(big: SandboxData) -> None:
    truth = big.truth
    horizon = 30
    expected, observed, variance = 0.0, 0.0, 0.0
    for as_of in pd.date_range(END - timedelta(days=700), END - timedelta(days=30), freq="35D"):
        created, app = truth["created"], truth["true_app_time"]
        open_ = (created <= as_of) & ~(app <= as_of)
        p = true_probability(truth, truth.loc[open_, "person_guid"], as_of, horizon)
        assert ((p >= 0) & (p <= 1)).all()
        hit = (app[open_] > as_of) & (app[open_] <= as_of + pd.Timedelta(days=horizon))
        expected += p.sum()
        observed += hit.sum()
        variance += (p * (1 - p)).sum()
    assert observed > 100
    assert abs(observed - expected) < 4 * np.sqrt(variance), (observed, expected)


def test_true_probability_edges(big: SandboxData) -> None:
    truth = big.truth
    applied = truth.loc[truth["true_app_time"].notna()].iloc[0]
    guid = applied["person_guid"]
    after = applied["true_app_time"] + pd.Timedelta(seconds=1)
    before_origin = applied["created"] - pd.Timedelta(days=1)
    just_before = applied["true_app_time"] - pd.Timedelta(hours=1)
    p = true_probability(truth, [guid, guid, guid], [after, before_origin, just_before], 30)
    assert p[0] == 0.0 and p[1] == 0.0 and 0.0 < p[2] < 1.0
    scalar = true_probability(truth, truth["person_guid"].head(50), pd.Timestamp(END), 30)
    array = true_probability(truth, truth["person_guid"].head(50), [END] * 50, 30)
    np.testing.assert_array_equal(scalar, array)
    aware = true_probability(truth, truth["person_guid"].head(50), datetime(2025, 6, 2, tzinfo=UTC), 30)
    np.testing.assert_array_equal(scalar, aware)
    longer = true_probability(truth, truth["person_guid"].head(50), pd.Timestamp(END), 60)
    assert (longer >= scalar).all() and (longer > scalar).any()
    with pytest.raises(KeyError, match="not in truth"):
        true_probability(truth, ["00000000-0000-4000-8000-000000000000"], END, 30)
    with pytest.raises(ValueError, match="horizon_days"):
        true_probability(truth, [guid], END, 0)


def test_write_read_round_trip(clean: SandboxData, tmp_path) -> None:
    write_sandbox(clean, tmp_path / "sb")
    back = read_sandbox(tmp_path / "sb")
    pd.testing.assert_frame_equal(back.leads, clean.leads)
    pd.testing.assert_frame_equal(back.interactions, clean.interactions)
    pd.testing.assert_frame_equal(back.truth, clean.truth)
    assert back.meta == clean.meta
    assert not list((tmp_path / "sb").glob(".*tmp"))
    with pytest.raises(FileNotFoundError, match=r"meta\.json"):
        read_sandbox(tmp_path)


def test_generate_command_writes_sandbox(tmp_path) -> None:
    meta = generate_command(leads=500, seed=2, out=tmp_path / "out", end=END)
    assert meta["leads"] == 500 and meta["seed"] == 2
    assert meta["end"] == "2025-06-02T00:00:00"
    data = read_sandbox(tmp_path / "out")
    assert data.meta == meta
    assert data.leads["person_guid"].nunique() == 500


def test_config_defaults_and_validation() -> None:
    end = default_end()
    today = datetime.now(UTC).replace(tzinfo=None, hour=0, minute=0, second=0, microsecond=0)
    assert end.weekday() == 0 and end.time() == datetime.min.time()
    assert today - timedelta(days=7) <= end < today
    aware = GeneratorConfig(end=datetime(2025, 6, 2, 2, tzinfo=UTC).astimezone(UTC))
    assert aware.end == datetime(2025, 6, 2, 2) and aware.end.tzinfo is None
    with pytest.raises(ValueError, match="leads"):
        GeneratorConfig(leads=0, end=END)
    with pytest.raises(ValueError, match="duplicate_rows"):
        DirtRates(duplicate_rows=1.5)
