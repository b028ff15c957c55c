"""UTC moments to and from an instance's naive wall time, at and around DST changes."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from leadscore.slate.wall_time import TimeZoneError, instance_zone, utc_to_wall, wall_to_utc


def stamps(*values: str) -> np.ndarray:
    return np.array(values, dtype="datetime64[us]")


def test_round_trip_outside_the_repeated_hour_is_exact() -> None:
    utc = pd.date_range("2026-01-01", "2027-01-01", freq="37min").to_numpy("datetime64[us]")
    back = wall_to_utc(utc_to_wall(utc, "America/New_York"), "America/New_York")
    repeated = (utc >= np.datetime64("2026-11-01T06:00")) & (utc < np.datetime64("2026-11-01T07:00"))
    assert (back[~repeated] == utc[~repeated]).all()
    assert (back[repeated] == utc[repeated] - np.timedelta64(1, "h")).all() and repeated.any()


@pytest.mark.parametrize(
    ("zone", "wall", "utc"),
    [
        ("America/New_York", "2026-11-01T01:30", "2026-11-01T05:30"),  # first (EDT) occurrence
        ("America/New_York", "2026-03-08T02:30", "2026-03-08T07:00"),  # gap: first moment after it
        ("Europe/Dublin", "2026-10-25T01:30", "2026-10-25T00:30"),  # negative DST in the tz database: still first
        ("Australia/Lord_Howe", "2026-04-05T01:45", "2026-04-04T14:45"),  # a 30-minute change
        ("UTC", "2026-11-01T01:30", "2026-11-01T01:30"),
    ],
)
def test_ambiguous_and_skipped_wall_times(zone: str, wall: str, utc: str) -> None:
    assert wall_to_utc(stamps(wall), zone)[0] == np.datetime64(utc, "us")


def test_nat_is_kept_and_unknown_zones_are_refused() -> None:
    out = wall_to_utc(stamps("NaT", "2026-07-01T12:00"), "America/Chicago")
    assert np.isnat(out[0]) and out[1] == np.datetime64("2026-07-01T17:00", "us")
    assert np.isnat(utc_to_wall(stamps("NaT"), "America/Chicago")[0])
    with pytest.raises(TimeZoneError, match="'US Eastern' is not an IANA time zone name"):
        instance_zone("US Eastern")
