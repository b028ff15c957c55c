"""What a fetch from Slate's query web service returns (``Page``, ``FetchResult``) and how window bounds are sent."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

import pandas as pd

from leadscore.slate.wall_time import UTC_NAME, wall_time

WIRE_DATETIME = "%Y-%m-%dT%H:%M:%S"


@dataclass(frozen=True)
class Page:
    """One validated page of a query's answer.

    Attributes:
        query: query name. number: 1-based page number. rows: the rows as sent (dicts of strings, NULLs omitted).
        columns: columns seen on this page, in first-seen order. after: the cursor sent (``NIL_GUID`` on page 1).
        last_key: key of the last row (the next page's cursor), None when the page is empty.
        retries: retries this page needed. seconds: wall time of this page including retries.
    """

    query: str
    number: int
    rows: list[dict[str, str]] = field(repr=False)
    columns: tuple[str, ...]
    after: str
    last_key: str | None
    retries: int
    seconds: float


@dataclass(frozen=True)
class FetchResult:
    """The whole answer of a query over a window.

    Attributes:
        query: query name.
        frame: one row per answered row; every column seen (the query's columns first, then unexpected extras) as
            strings, NaN where the row omitted the column (NULL).
        pages, rows, retries: counts over the fetch. seconds: wall time of the fetch.
    """

    query: str
    frame: pd.DataFrame = field(repr=False)
    pages: int
    rows: int
    retries: int
    seconds: float


def format_wire_datetime(value: datetime | pd.Timestamp | str | None, timezone: str = UTC_NAME) -> str | None:
    """Format a window bound as Slate's ``datetime`` parameter ``YYYY-MM-DDTHH:MM:SS`` in the instance's wall time.

    Args:
        value: a naive datetime (taken as UTC), an aware one, a string parseable by pandas, or None.
        timezone: the instance's IANA zone (``Settings.slate_timezone``); the bound is sent as its wall time, which
            is what Slate compares its naive stamps against.
    Returns:
        The formatted string, or None for None.
    Raises:
        TimeZoneError: unknown zone name.
    """
    if value is None:
        return None
    return wall_time(value, timezone).strftime(WIRE_DATETIME)
