"""The sandbox as an instance with a time zone: stamps stored and compared as naive local wall time, as Slate does.

The generator writes UTC. For an instance zone other than UTC, ``localize_tables`` turns the hidden time columns the
web service filters on into wall time and re-renders the wire strings that show those times (ISO and the
``MM/DD/YYYY HH:MM`` variant) in wall time; dirty strings (NULL, impossible dates) stay as they were. The service
then compares ``since``/``until`` (wall time, as a client sends them) with wall times, as a SQL Server query on
Slate's ``datetime`` columns does, repeated hour at the fall-back change included.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from leadscore.sandbox.wirefmt import iso_seconds, us_date_minutes
from leadscore.slate.wall_time import UTC_NAME, instance_zone, utc_to_wall

# (wire column, hidden UTC column) pairs of each table.
LEADS_TIMES = (("origin_date", "_created"), ("application_created", "_app_created"))
INTERACTIONS_TIMES = (("occurred", "_occurred"),)


def _strings(series: pd.Series) -> pa.Array:
    arr = pa.array(series.astype("string"))
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    return arr.cast(pa.large_string())


def localize_frame(frame: pd.DataFrame, pairs: tuple[tuple[str, str], ...], zone: str) -> pd.DataFrame:
    """A copy of one wire table with its hidden times and their wire strings in the zone's wall time.

    Args:
        frame: the generator's table (wire strings plus hidden ``_`` UTC columns).
        pairs: (wire column, hidden column) pairs; a pair whose columns are absent is skipped.
        zone: IANA name; UTC returns the frame unchanged.
    Returns:
        The localized frame (wire columns as ``str``, hidden columns ``datetime64[us]``).
    Raises:
        TimeZoneError: unknown zone.
    """
    instance_zone(zone)
    if zone == UTC_NAME:
        return frame
    out = frame.copy()
    for wire, hidden in pairs:
        if hidden not in out.columns:
            continue
        utc = pd.to_datetime(out[hidden]).astype("datetime64[us]").to_numpy()
        wall = utc_to_wall(utc, zone)
        out[hidden] = wall
        if wire not in out.columns:
            continue
        text = _strings(out[wire])
        for render in (iso_seconds, us_date_minutes):
            shown = pc.fill_null(pc.equal(text, render(utc)), False)
            text = pc.if_else(shown, render(wall), text)
        out[wire] = pd.Series(text.to_pandas(), index=out.index, dtype="str").where(~np.asarray(pc.is_null(text)))
    return out


def localize_tables(leads: pd.DataFrame, interactions: pd.DataFrame, zone: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Both wire tables in the instance's wall time (see the module doc)."""
    return localize_frame(leads, LEADS_TIMES, zone), localize_frame(interactions, INTERACTIONS_TIMES, zone)
