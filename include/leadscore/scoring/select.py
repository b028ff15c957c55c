"""Which leads are scored in a week: recent, still open, real, reachable."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import pandas as pd

from leadscore.scoring.errors import SelectionError

_LEAD_NEEDED = ("person_guid", "origin_date", "application_created", "is_test")


def _as_timestamp(as_of: date | datetime | pd.Timestamp) -> pd.Timestamp:
    ts = pd.Timestamp(as_of)
    if ts.tzinfo is not None:
        # Cleaned tables hold tz-naive UTC timestamps (tables.py), so compare in that convention.
        ts = ts.tz_convert("UTC").tz_localize(None)
    return ts


def select_leads(
    features: pd.DataFrame,
    leads: pd.DataFrame,
    as_of: date | datetime | pd.Timestamp,
    lookback_days: int,
) -> pd.DataFrame:
    """Keep the feature rows of the leads to score as of ``as_of``.

    A lead is scored when its first origin is in ``[as_of - lookback_days, as_of)``, it has no application created
    before ``as_of`` (point in time: an application created later does not exclude it from a backfilled week), it is
    not tagged ``test``, and its ``opted_out`` feature is 0.

    Args:
        features: output of ``features_as_of`` (``person_guid`` plus ``FEATURE_COLUMNS``), one row per lead.
        leads: the cleaned leads table (``tables.LEAD_COLUMNS``), one row per person.
        as_of: the scoring date (the data interval's end).
        lookback_days: how far back a first origin may lie (``Settings.lookback_days``).
    Returns:
        The selected rows of ``features`` (all its columns), in their original order, with a fresh index.
    Raises:
        SelectionError: a needed column is missing, a GUID repeats, or ``lookback_days`` is not positive.
    """
    if lookback_days <= 0:
        raise SelectionError(f"lookback_days must be positive, got {lookback_days}")
    missing = [c for c in _LEAD_NEEDED if c not in leads.columns]
    if missing:
        raise SelectionError(f"leads table lacks columns {missing} (see tables.LEAD_COLUMNS)")
    for name, needed in (("features", ("person_guid", "opted_out")),):
        lacking = [c for c in needed if c not in features.columns]
        if lacking:
            raise SelectionError(f"{name} frame lacks columns {lacking} (see tables.FEATURE_COLUMNS)")
    for name, frame in (("leads", leads), ("features", features)):
        dupes = frame["person_guid"].duplicated()
        if dupes.any():
            raise SelectionError(
                f"{name} holds {int(dupes.sum())} repeated person_guid values "
                f"(e.g. {frame.loc[dupes, 'person_guid'].iloc[0]!r}); deduplicate before scoring"
            )

    for name, frame, col in (("leads", leads, "is_test"), ("features", features, "opted_out")):
        if frame[col].isna().any():
            raise SelectionError(
                f"{name}.{col} holds {int(frame[col].isna().sum())} missing values; the data layer must fill it"
            )

    cutoff = _as_timestamp(as_of)
    start = cutoff - timedelta(days=lookback_days)
    origin = leads["origin_date"]
    applied = leads["application_created"]
    eligible = (
        origin.notna()
        & (origin >= start)
        & (origin < cutoff)
        & ~(applied.notna() & (applied < cutoff))
        & ~leads["is_test"].astype(bool)
    )
    keep_guids = leads.loc[eligible.to_numpy(), "person_guid"]
    in_leads = features["person_guid"].isin(keep_guids).to_numpy()
    reachable = features["opted_out"].to_numpy(dtype="float64") == 0
    return features.loc[in_leads & reachable].reset_index(drop=True)
