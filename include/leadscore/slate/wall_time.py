"""The Slate instance's wall time: UTC moments to and from the naive local stamps Slate stores and compares.

Slate is a SQL Server application whose ``datetime`` columns hold the instance's local wall time with no offset, and
whose queries compare ``@since``/``@until`` against those columns. LeadScore keeps every moment in UTC, so it sends
each UTC window bound as the instance's wall time and reads each naive stamp back as wall time.

UTC to wall time is a function. Wall time to UTC is not, twice a year:

- the repeated hour when clocks fall back (01:00-02:00 happens twice in America/New_York): a stamp there is read as
  its **first** occurrence. Slate stored no offset, so the answer cannot tell the two apart; the first one keeps the
  mapping monotone (a later wall stamp never maps to an earlier moment), so windows stay contiguous and a stamp is
  at most one hour early, never later than the truth (it can never pass the window's end).
- the skipped hour when clocks spring forward (02:00-03:00): no moment has that wall time, so a stamp there (typed
  by hand or imported) is **shifted forward** to the first moment after the gap, again keeping the order.

Window bounds need no such rule: each UTC week boundary has exactly one wall time, and consecutive windows share
their bound, so every stored stamp falls in exactly one window (no row lost or doubled across a DST change).
"""

from __future__ import annotations

import zoneinfo
from datetime import datetime
from functools import lru_cache

import numpy as np
import pandas as pd

UTC_NAME = "UTC"


class TimeZoneError(ValueError):
    """A time zone name that is not in the IANA database."""


@lru_cache(maxsize=32)
def instance_zone(name: str) -> zoneinfo.ZoneInfo:
    """The IANA zone ``name`` (e.g. ``America/New_York``).

    Raises:
        TimeZoneError: unknown or malformed name; the message names it and gives examples.
    """
    try:
        return zoneinfo.ZoneInfo(str(name).strip())
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, TypeError):
        raise TimeZoneError(
            f"{name!r} is not an IANA time zone name; use the zone of the Slate instance, e.g. "
            "'America/New_York', 'America/Chicago', 'America/Los_Angeles' or 'UTC'"
        ) from None


def _is_utc(name: str) -> bool:
    return str(name).strip().upper() in ("UTC", "ETC/UTC", "ETC/UCT", "UCT")


def utc_to_wall(values: np.ndarray, zone: str) -> np.ndarray:
    """Naive UTC moments (``datetime64``, NaT kept) as the zone's naive wall times (``datetime64[us]``)."""
    values = np.asarray(values).astype("datetime64[us]")
    if _is_utc(zone) or values.size == 0:
        return values
    instance_zone(zone)
    index = pd.DatetimeIndex(values).tz_localize(UTC_NAME).tz_convert(zone).tz_localize(None)
    return index.to_numpy().astype("datetime64[us]")


def wall_to_utc(values: np.ndarray, zone: str) -> np.ndarray:
    """Naive wall times of the zone as naive UTC moments (``datetime64[us]``, NaT kept).

    A wall time of the repeated hour maps to its first occurrence, one in the skipped hour to the first moment after
    the gap (see the module doc for why).
    """
    values = np.asarray(values).astype("datetime64[us]")
    if _is_utc(zone) or values.size == 0:
        return values
    instance_zone(zone)
    index = pd.DatetimeIndex(values)
    n = len(index)
    # pandas' `ambiguous` flags say "DST or not"; the earlier of both readings is the first occurrence in any zone
    # (including those whose DST offset is negative).
    one = index.tz_localize(zone, ambiguous=np.ones(n, dtype=bool), nonexistent="shift_forward")
    other = index.tz_localize(zone, ambiguous=np.zeros(n, dtype=bool), nonexistent="shift_forward")
    first = np.minimum(one.tz_convert(None).to_numpy(), other.tz_convert(None).to_numpy())
    first = np.where(np.isnat(values), np.datetime64("NaT", "us"), first)
    return first.astype("datetime64[us]")


def wall_time(value: datetime | pd.Timestamp | str, zone: str) -> pd.Timestamp:
    """One moment (naive = UTC, aware = converted) as the zone's naive wall time."""
    ts = pd.Timestamp(value)
    ts = ts.tz_localize(UTC_NAME) if ts.tzinfo is None else ts.tz_convert(UTC_NAME)
    if _is_utc(zone):
        return ts.tz_localize(None)
    return ts.tz_convert(instance_zone(zone)).tz_localize(None)
