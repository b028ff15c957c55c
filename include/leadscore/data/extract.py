"""Extraction of one data interval: fetch both queries, validate, check the quarantine bound, clean, store.

Nothing is half-written: both queries are fetched and validated before anything is stored, so a failure of either
(a Slate error, too many quarantined rows) leaves the interval's earlier files as they were.
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

import pandas as pd

from leadscore.data.clean import CleanStats, clean_interactions, clean_leads
from leadscore.data.store import ExtractStore, interval_name, to_utc_naive
from leadscore.data.validate import ValidationResult, check_quarantine_share, validate
from leadscore.settings import Settings
from leadscore.slate.client import FetchResult, SlateClient, format_wire_datetime
from leadscore.slate.queries import INTERACTIONS, LEADS, QuerySpec

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class QuerySummary:
    """Data quality of one query in one interval (rows, pages, retries, seconds, what was removed and why)."""

    query: str
    rows_in: int
    pages: int
    retries: int
    fetch_seconds: float
    quarantined: int
    quarantined_by_reason: dict[str, int]
    extra_columns: dict[str, int]
    duplicates: int
    test_dropped: int
    superseded: int
    rows_out: int
    unseen_sources: dict[str, int]
    extract_path: str
    quarantine_path: str


@dataclass(frozen=True)
class IntervalSummary:
    """What ``extract_interval`` did for one data interval; also written as the interval's summary JSON.

    Attributes:
        interval_start, interval_end: the data interval (ISO, tz-naive UTC).
        full_history: whether the whole history up to interval_end was pulled (first run).
        since, until: the window sent to Slate (since None on a full-history pull).
        leads, interactions: per-query summaries.
        new_leads, changed_leads: leads of this interval absent from / present in the other stored intervals.
        new_interactions: interactions stored for this interval.
        seconds: wall time of the whole interval.
        summary_path: where the JSON was written.
    """

    interval_start: str
    interval_end: str
    full_history: bool
    since: str | None
    until: str
    leads: QuerySummary
    interactions: QuerySummary
    new_leads: int
    changed_leads: int
    new_interactions: int
    seconds: float
    summary_path: str = ""
    queries: tuple[str, ...] = field(default=(LEADS.name, INTERACTIONS.name))

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        out = asdict(self)
        out["queries"] = list(self.queries)
        return out


def has_earlier_extract(store: ExtractStore, interval_start: pd.Timestamp) -> bool:
    """Whether both queries have a stored interval ending at or before ``interval_start``."""
    return all(any(end <= interval_start for _, end in store.intervals(q)) for q in (LEADS, INTERACTIONS))


def _fetch_and_validate(
    client: SlateClient, spec: QuerySpec, since: pd.Timestamp | None, until: pd.Timestamp, page_size: int
) -> tuple[FetchResult, ValidationResult]:
    fetched = client.fetch_all(spec, since, until, page_size)
    result = validate(spec, fetched.frame, not_after=until)
    log.info(
        "%s: %d rows fetched, %d quarantined %s, extra columns %s",
        spec.name,
        fetched.rows,
        len(result.quarantined),
        result.counts_by_reason,
        sorted(result.extra_columns),
    )
    return fetched, result


def _query_summary(
    spec: QuerySpec, fetched: FetchResult, result: ValidationResult, stats: CleanStats, extract: str, quarantine: str
) -> QuerySummary:
    return QuerySummary(
        query=spec.name,
        rows_in=fetched.rows,
        pages=fetched.pages,
        retries=fetched.retries,
        fetch_seconds=round(fetched.seconds, 3),
        quarantined=len(result.quarantined),
        quarantined_by_reason=dict(result.counts_by_reason),
        extra_columns=dict(result.extra_columns),
        duplicates=stats.duplicates,
        test_dropped=stats.test_dropped,
        superseded=stats.superseded,
        rows_out=stats.rows_out,
        unseen_sources=dict(stats.unseen_sources),
        extract_path=extract,
        quarantine_path=quarantine,
    )


def extract_interval(
    client: SlateClient,
    store: ExtractStore,
    settings: Settings,
    interval_start: datetime | pd.Timestamp | str,
    interval_end: datetime | pd.Timestamp | str,
    full_history: bool | None = None,
) -> IntervalSummary:
    """Extract the data interval ``[interval_start, interval_end)`` of both queries into the store.

    Pulls new and changed leads and the interactions stamped in the interval; on the first run (no stored interval
    ending at or before ``interval_start``) pulls the whole history up to ``interval_end`` instead. Validates,
    fails when a query's quarantined share passes ``settings.quarantine_max_share``, cleans, then writes the
    quarantine files, both extracts (staged together) and the summary, replacing a previous run of the interval.

    Args:
        client: the Slate client. store: the extract store. settings: page_size and quarantine_max_share.
        interval_start, interval_end: the data interval (aware values are converted to UTC).
        full_history: True forces a whole-history pull, False forbids it, None decides as above.
    Returns:
        The IntervalSummary (also written as JSON under the store's summary_dir).
    Raises:
        ValueError: start >= end. SlateError: Slate failed (nothing stored). QuarantineLimitError: too many bad rows
        (only the failing query's quarantine file is written, for diagnosis; no extract is stored).
    """
    started = time.monotonic()
    start, end = to_utc_naive(interval_start), to_utc_naive(interval_end)
    name = interval_name(start, end)
    full = (not has_earlier_extract(store, start)) if full_history is None else bool(full_history)
    since = None if full else start
    log.info("interval %s: %s pull, since=%s until=%s", name, "full-history" if full else "incremental", since, end)

    fetched: dict[str, tuple[FetchResult, ValidationResult]] = {}
    for spec in (LEADS, INTERACTIONS):
        fetched[spec.name] = _fetch_and_validate(client, spec, since, end, settings.page_size)
        result = fetched[spec.name][1]
        if result.quarantined_share > settings.quarantine_max_share:
            # Fail fast, before the other query is fetched; only the quarantine file is kept, for diagnosis.
            path = store.write_quarantine(spec, start, end, result.quarantined)
            check_quarantine_share(result, settings.quarantine_max_share, spec, path)

    leads, lead_stats = clean_leads(fetched[LEADS.name][1].valid)
    interactions, interaction_stats = clean_interactions(fetched[INTERACTIONS.name][1].valid)

    known = store.read_all(LEADS, exclude=(start, end), columns=["person_guid"])["person_guid"]
    changed = int(leads["person_guid"].isin(known).sum())

    quarantine_paths = {
        spec.name: store.write_quarantine(spec, start, end, fetched[spec.name][1].quarantined)
        for spec in (LEADS, INTERACTIONS)
    }
    paths = store.write_many(start, end, {LEADS.name: leads, INTERACTIONS.name: interactions})

    summary = IntervalSummary(
        interval_start=start.isoformat(),
        interval_end=end.isoformat(),
        full_history=full,
        since=format_wire_datetime(since),
        until=format_wire_datetime(end) or "",
        leads=_query_summary(
            LEADS, *fetched[LEADS.name], lead_stats, str(paths[LEADS.name]), str(quarantine_paths[LEADS.name])
        ),
        interactions=_query_summary(
            INTERACTIONS,
            *fetched[INTERACTIONS.name],
            interaction_stats,
            str(paths[INTERACTIONS.name]),
            str(quarantine_paths[INTERACTIONS.name]),
        ),
        new_leads=len(leads) - changed,
        changed_leads=changed,
        new_interactions=len(interactions),
        seconds=round(time.monotonic() - started, 3),
        summary_path=str(store.summary_path(start, end)),
    )
    store.write_summary(start, end, summary.as_dict())
    log.info(
        "interval %s: %d leads (%d new, %d changed), %d interactions, %.1f s",
        name,
        len(leads),
        summary.new_leads,
        changed,
        len(interactions),
        summary.seconds,
    )
    return summary
