"""The layout of stored extracts: each query's cleaned columns, interval file names, version keys."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pandas as pd
import pyarrow as pa

from leadscore.data.clean import empty_interactions, empty_leads
from leadscore.data.tables import INTERACTION_COLUMNS, LEAD_COLUMNS
from leadscore.slate.queries import INTERACTIONS, LEADS, PERSONS, QUERIES, QuerySpec

CONTRACTS: dict[str, dict[str, str]] = {
    LEADS.name: LEAD_COLUMNS,
    INTERACTIONS.name: INTERACTION_COLUMNS,
    PERSONS.name: {"person_guid": "string"},  # tombstones: stored persons Slate no longer lists
}
FIRST_SEEN = "first_seen"
# What identifies one version of a row: a lead changes (new `updated`), an interaction or a tombstone does not.
VERSION_KEYS: dict[str, tuple[str, ...]] = {
    LEADS.name: ("person_guid", "updated"),
    INTERACTIONS.name: ("interaction_guid",),
    PERSONS.name: ("person_guid",),
}
INTERVAL_NAME = re.compile(r"^(\d{8}(?:T\d{6})?)_(\d{8}(?:T\d{6})?)$")


def to_utc_naive(value: datetime | pd.Timestamp | str) -> pd.Timestamp:
    """A timestamp as tz-naive UTC (aware values are converted, naive ones taken as UTC)."""
    ts = pd.Timestamp(value)
    if ts.tzinfo is not None:
        ts = ts.tz_convert(UTC).tz_localize(None)
    return ts


def interval_stamp(value: datetime | pd.Timestamp | str) -> str:
    """``YYYYMMDD`` of a bound at midnight, else ``YYYYMMDDTHHMMSS`` (UTC)."""
    ts = to_utc_naive(value)
    return ts.strftime("%Y%m%d") if ts == ts.normalize() else ts.strftime("%Y%m%dT%H%M%S")


def interval_name(start: datetime | pd.Timestamp | str, end: datetime | pd.Timestamp | str) -> str:
    """The file stem of an interval: ``<start>_<end>``. Raises ValueError unless start < end."""
    s, e = to_utc_naive(start), to_utc_naive(end)
    if not s < e:
        raise ValueError(f"interval start {s} must be before its end {e}")
    return f"{interval_stamp(s)}_{interval_stamp(e)}"


def parse_stamp(text: str) -> pd.Timestamp:
    return pd.Timestamp(datetime.strptime(text, "%Y%m%dT%H%M%S" if "T" in text else "%Y%m%d"))


def spec_of(query: QuerySpec | str) -> QuerySpec:
    name = query if isinstance(query, str) else query.name
    if name not in CONTRACTS:
        raise ValueError(f"unknown query {name!r}; known: {sorted(CONTRACTS)}")
    return QUERIES[name]


def stored_columns(query: QuerySpec | str) -> dict[str, str]:
    """The columns of a stored extract: the query's cleaned contract plus ``first_seen``."""
    return {**CONTRACTS[spec_of(query).name], FIRST_SEEN: "datetime64[us]"}


def conform(query: QuerySpec | str, frame: pd.DataFrame, stored: bool = False) -> pd.DataFrame:
    """``frame`` restricted to the query's cleaned contract (order and dtypes), rows sorted by the key.

    Args:
        query: query (or name). frame: the rows. stored: keep ``first_seen`` too (the stored layout).
    Raises:
        KeyError: a contract column is missing.
    """
    spec = spec_of(query)
    contract = stored_columns(spec) if stored else CONTRACTS[spec.name]
    missing = [c for c in contract if c not in frame.columns]
    if missing:
        raise KeyError(f"{spec.name} frame lacks contract columns {missing}")
    out = frame[list(contract)].astype(contract)
    return out.sort_values(spec.key, kind="stable").reset_index(drop=True)


def contract_table(query: QuerySpec | str, frame: pd.DataFrame, stored: bool = False) -> pa.Table:
    """``frame`` conformed to the query's contract (see :func:`conform`) as an Arrow table.

    ``stored=True`` keeps ``first_seen``: the table the store writes.
    """
    return pa.Table.from_pandas(conform(query, frame, stored=stored), preserve_index=False)


def empty_frame(query: str) -> pd.DataFrame:
    if query == PERSONS.name:
        return pd.DataFrame({"person_guid": pd.Series([], dtype="string")})
    return empty_leads() if query == LEADS.name else empty_interactions()
