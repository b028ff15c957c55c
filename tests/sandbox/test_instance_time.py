"""An instance in America/New_York: consecutive windows across both 2026 DST changes lose and double no row.

The sandbox (the session's 3,000-lead data, end 2026-11-23) is served as an instance whose stamps are Eastern wall
time and whose queries compare since/until as wall time, as Slate does. The client sends each UTC boundary as wall
time (LEADSCORE_SLATE_TIMEZONE) and validation reads the stamps back to UTC. The truth is the generator's hidden UTC
time of every row.
"""

from __future__ import annotations

import itertools
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pandas as pd
import pytest
import requests

from leadscore.data.validate import validate
from leadscore.sandbox.config import load_or_create_credentials, read_meta
from leadscore.sandbox.dirt import WireDirt
from leadscore.sandbox.serve import wire_dirt_of
from leadscore.slate.client import SlateClient
from leadscore.slate.queries import INTERACTION_KINDS, INTERACTIONS, LEADS
from leadscore.slate.wall_time import utc_to_wall, wall_to_utc
from tests.fixtures_sandbox import web_service_in_zone

ZONE = "America/New_York"
NY = ZoneInfo(ZONE)
# Mondays 00:00 UTC around the spring-forward (2026-03-08) and fall-back (2026-11-01) changes.
SPRING = pd.date_range("2026-02-23", "2026-03-23", freq="7D")
FALL = pd.date_range("2026-10-19", "2026-11-16", freq="7D")
# Hourly UTC boundaries through the fall-back night: 05:00Z and 06:00Z are both 01:00 wall time.
FALL_NIGHT = pd.date_range("2026-11-01T02:00", "2026-11-01T10:00", freq="1h")


@pytest.fixture(scope="module")
def eastern(sandbox_data_dir: Path) -> Any:
    """The session sandbox's data served as an America/New_York instance (wire variants as generated)."""
    with web_service_in_zone(sandbox_data_dir, ZONE) as (web, config):
        yield {
            "web": web,
            "client": SlateClient(config),
            "leads": pd.read_parquet(sandbox_data_dir / "leads.parquet"),
            "interactions": pd.read_parquet(sandbox_data_dir / "interactions.parquet"),
        }


def first_occurrence(truth: pd.Series) -> pd.Series:
    """What a naive Eastern stamp of each UTC truth reads back as (stdlib zoneinfo, fold=0: the first occurrence)."""

    def one(t: pd.Timestamp) -> pd.Timestamp:
        wall = t.to_pydatetime().replace(tzinfo=UTC).astimezone(NY).replace(tzinfo=None, fold=0)
        return pd.Timestamp(wall.replace(tzinfo=NY).astimezone(UTC).replace(tzinfo=None))

    return truth.map(one)


def wall(values: pd.Series | pd.DatetimeIndex) -> pd.Series:
    return pd.Series(utc_to_wall(pd.Series(values).to_numpy("datetime64[us]"), ZONE))


def pull(eastern: Any, spec: Any, bounds: pd.DatetimeIndex, page_size: int = 500) -> list[pd.DataFrame]:
    """The valid rows of each window [bounds[i], bounds[i+1]), one row per key (duplicate records collapsed)."""
    out = []
    for since, until in itertools.pairwise(bounds):
        frame = eastern["client"].fetch_all(spec, since, until, page_size, timezone=ZONE).frame
        valid = validate(spec, frame, not_after=until, timezone=ZONE).valid
        out.append(valid.drop_duplicates(spec.key))
    return out


def clean_truth(interactions: pd.DataFrame) -> pd.DataFrame:
    """Interactions whose wire stamp is the truth's and whose kind is known (the others are quarantined dirt)."""
    iso = interactions["_occurred"].dt.strftime("%Y-%m-%dT%H:%M:%S")
    keep = interactions["occurred"].eq(iso) & interactions["kind"].isin(list(INTERACTION_KINDS))
    return interactions[keep.fillna(False).to_numpy(dtype=bool)].drop_duplicates("interaction_guid")


@pytest.mark.parametrize("bounds", [SPRING, FALL, FALL_NIGHT], ids=["spring-forward", "fall-back", "fall-back-hourly"])
def test_interaction_windows_across_a_dst_change_are_contiguous(eastern: Any, bounds: pd.DatetimeIndex) -> None:
    windows = pull(eastern, INTERACTIONS, bounds)
    seen = Counter(g for w in windows for g in w["interaction_guid"])
    assert all(count == 1 for count in seen.values()), "a row came back in two windows"

    truth = clean_truth(eastern["interactions"])
    truth = truth.assign(wall=wall(truth["_occurred"]).to_numpy(), expected=first_occurrence(truth["_occurred"]))
    edges = wall(bounds)
    inside = (truth["wall"] >= edges.iloc[0]) & (truth["wall"] < edges.iloc[-1])
    expected = truth[inside]
    assert len(expected) > 0 or bounds is FALL_NIGHT
    assert set(seen) == set(expected["interaction_guid"])  # nothing lost, nothing extra

    got = pd.concat(windows).set_index("interaction_guid")["occurred"]
    want = expected.set_index("interaction_guid")["expected"]
    assert (got.loc[want.index] == want).all()  # UTC again: the truth, or its first occurrence in the repeated hour
    differs = want.index[want != expected.set_index("interaction_guid")["_occurred"]]
    repeated = expected["_occurred"].between("2026-11-01T06:00", "2026-11-01T07:00", inclusive="left")
    assert set(differs) <= set(expected.loc[repeated, "interaction_guid"])  # 01:00-02:00 EST, read as EDT
    if bounds is not FALL_NIGHT:  # week boundaries (19:00/20:00 wall) are far from any change: the UTC week itself
        for w, since, until in zip(windows, bounds[:-1], bounds[1:], strict=True):
            ids = set(truth.loc[truth["_occurred"].between(since, until, inclusive="left"), "interaction_guid"])
            assert set(w["interaction_guid"]) == ids


@pytest.mark.parametrize("bounds", [SPRING, FALL], ids=["spring-forward", "fall-back"])
def test_lead_windows_across_a_dst_change_return_each_change_once_with_utc_stamps(eastern: Any, bounds) -> None:
    windows = pull(eastern, LEADS, bounds, page_size=2_000)
    leads = eastern["leads"].drop_duplicates("person_guid")
    iso = leads["_created"].dt.strftime("%Y-%m-%dT%H:%M:%S")
    leads = leads[leads["origin_date"].eq(iso).fillna(False).to_numpy(dtype=bool)]
    for w, since, until in zip(windows, bounds[:-1], bounds[1:], strict=True):
        created = leads["_created"].between(since, until, inclusive="left")
        applied = leads["_app_created"].between(since, until, inclusive="left").fillna(False)
        expected = set(leads.loc[created | applied, "person_guid"])
        got = w[w["person_guid"].isin(set(leads["person_guid"]))]
        assert set(got["person_guid"]) == expected  # each creation and each application start in its own week
        truth = leads.set_index("person_guid").loc[got["person_guid"], "_created"]
        assert (got["origin_date"].to_numpy() == truth.to_numpy()).all()  # returned as UTC, equal to the truth


def test_the_window_is_sent_and_compared_as_eastern_wall_time(eastern: Any) -> None:
    eastern["web"].clear_request_log()
    eastern["client"].fetch_all(INTERACTIONS, FALL[0], FALL[1], 10_000, timezone=ZONE)
    params = eastern["web"].request_log()[0]["params"]
    assert (params["since"], params["until"]) == ("2026-10-18T20:00:00", "2026-10-25T20:00:00")  # EDT, UTC-4
    assert wall_to_utc(pd.Series([datetime(2026, 11, 1, 1, 30)]).to_numpy("datetime64[us]"), ZONE)[0] == (
        pd.Timestamp("2026-11-01T05:30").to_datetime64()
    )


def test_served_stamps_are_wall_time(eastern: Any, sandbox_data_dir: Path) -> None:
    eastern["web"].wire = WireDirt.none()  # the stored form, no offsets
    interactions = eastern["interactions"]
    row = interactions[interactions["_occurred"].between("2026-07-01", "2026-07-02")].iloc[0]
    creds = load_or_create_credentials(sandbox_data_dir)
    q = creds.queries["interactions"]
    since = (row["_occurred"] - pd.Timedelta(hours=4)).isoformat()  # EDT wall time of the truth
    until = (row["_occurred"] - pd.Timedelta(hours=4) + pd.Timedelta(seconds=1)).isoformat()
    r = requests.get(
        eastern["web"].url + "/manage/query/run",
        params={"id": q.id, "h": q.h, "cmd": "service", "output": "json", "since": since, "until": until},
        auth=(creds.service_user, creds.service_password),
        timeout=30,
    )
    eastern["web"].wire = wire_dirt_of(read_meta(sandbox_data_dir))
    rows = [x for x in r.json()["row"] if x["interaction_guid"] == row["interaction_guid"]]
    assert len(rows) >= 1 and rows[0]["occurred"] == since[:19]  # 4 hours before the UTC truth


def test_an_aware_parameter_is_converted_to_the_instance_wall_time(eastern: Any, sandbox_data_dir: Path) -> None:
    creds = load_or_create_credentials(sandbox_data_dir)
    q = creds.queries["interactions"]
    counts = []
    for since, until in (
        ("2026-07-01T04:00:00Z", "2026-07-08T04:00:00Z"),
        ("2026-07-01T00:00:00", "2026-07-08T00:00:00"),
    ):
        r = requests.get(
            eastern["web"].url + "/manage/query/run",
            params={"id": q.id, "h": q.h, "cmd": "service", "output": "json", "since": since, "until": until},
            auth=(creds.service_user, creds.service_password),
            timeout=30,
        )
        counts.append(len(r.json()["row"]))
    assert counts[0] == counts[1] > 0  # 04:00Z is 00:00 EDT: the same window
