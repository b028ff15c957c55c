"""Extraction of one data interval: fetch both queries, validate, check the quarantine bound, clean, store.

Nothing is half-written: both queries are fetched and validated before anything is stored, so a failure of either
(a Slate error, too many quarantined rows) leaves the interval's earlier files as they were.

Memory is bounded for the interactions query (about 25 rows per lead): its pages are validated and cleaned in batches
of ``batch_rows`` rows, each batch is spilled as a sorted run to a temp Parquet file in the store's folder, and the
runs are merged back in key order (first arrival of a repeated interaction kept, as a single-batch clean would) into
a staged temp file of the extract, moved into place only when both queries completed. Pages arrive in the server's
key order, which need not be the store's (``key_order="sqlserver"``, braced GUIDs), hence the merge rather than a
plain append. Leads (one row per person) are held in memory.

Incremental pulls start ``settings.extract_overlap_days`` before the interval (records that reach Slate late are
read again and stored once more; the store keeps the latest copy and records when each was first seen), and each
run also pulls the ``persons`` reconciliation query (see ``data.reconcile``).
"""

from __future__ import annotations

import logging
import os
import tempfile
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from leadscore.data.clean import CleanStats, clean_interactions, clean_leads
from leadscore.data.contracts import FIRST_SEEN, contract_table, interval_name, to_utc_naive
from leadscore.data.reconcile import fetch_persons, find_gone
from leadscore.data.seen import SeenLookup
from leadscore.data.staged import StagedParquet
from leadscore.data.store import ExtractStore
from leadscore.data.validate import ValidationResult, check_quarantine_share, validate
from leadscore.files import FILE_MODE, remove_dead_temps
from leadscore.files import private_dir as make_private_dir
from leadscore.settings import Settings
from leadscore.slate.client import SlateClient
from leadscore.slate.pages import FetchResult, Page, format_wire_datetime
from leadscore.slate.queries import INTERACTIONS, LEADS, PERSONS, QuerySpec

log = logging.getLogger(__name__)

DEFAULT_BATCH_ROWS = 200_000
# Rows per row group of the spilled runs: the merge holds one such group per run in memory.
_RUN_GROUP_ROWS = 16_384
_ORD = "__arrival"


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
        since, until: the window in UTC (since None on a full-history pull; the interval start minus the overlap
            otherwise).
        timezone, wire_since, wire_until: the instance's zone and the window as sent, in its wall time.
        leads, interactions, persons: per-query summaries.
        new_leads, changed_leads: leads of this interval absent from / present in the other stored intervals.
        reread_leads: leads whose version (same ``updated``) was already stored: the overlap read them again.
        new_interactions: interactions stored for this interval.
        late_interactions: interactions stamped before the interval that no other stored interval holds: they
            reached Slate after the pull of their own week.
        gone_persons: stored persons the reconciliation found merged away or deleted (the persons extract).
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
    timezone: str = "UTC"
    wire_since: str | None = None
    wire_until: str = ""
    queries: tuple[str, ...] = field(default=(LEADS.name, INTERACTIONS.name, PERSONS.name))
    persons: QuerySummary | None = None
    reread_leads: int = 0
    late_interactions: int = 0
    gone_persons: int = 0
    overlap_days: int = 0

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        out = asdict(self)
        out["queries"] = list(self.queries)
        return out


def has_earlier_extract(store: ExtractStore, interval_start: pd.Timestamp) -> bool:
    """Whether both queries have a stored interval ending at or before ``interval_start``."""
    return all(any(end <= interval_start for _, end in store.intervals(q)) for q in (LEADS, INTERACTIONS))


def _stored_keys(store: ExtractStore, start: pd.Timestamp, end: pd.Timestamp, since: pd.Timestamp | None) -> pd.Index:
    """Interaction GUIDs stamped at or after ``since`` that earlier-ending stored intervals hold (none on a full pull)."""
    if since is None:
        return pd.Index([], dtype=object)
    keys = []
    for s, e in store.intervals(INTERACTIONS):
        if e <= since or e > end or (s, e) == (start, end):
            continue  # an interval ending before the window cannot hold rows stamped inside it
        table = pq.read_table(
            store.path(INTERACTIONS, s, e),
            columns=[INTERACTIONS.key],
            filters=[("occurred", ">=", since.to_datetime64())],
        )
        keys.append(table.column(0).to_pandas())
    return pd.Index(pd.concat(keys).unique()) if keys else pd.Index([], dtype=object)


def _fetch_and_validate(
    client: SlateClient,
    spec: QuerySpec,
    since: pd.Timestamp | None,
    until: pd.Timestamp,
    page_size: int,
    timezone: str,
) -> tuple[FetchResult, ValidationResult]:
    fetched = client.fetch_all(spec, since, until, page_size, timezone)
    result = validate(spec, fetched.frame, not_after=until, timezone=timezone)
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
    spec: QuerySpec,
    fetched: FetchResult | _Streamed,
    result: ValidationResult,
    stats: CleanStats,
    extract: str,
    quarantine: str,
) -> QuerySummary:
    rows_in = fetched.rows if isinstance(fetched, FetchResult) else fetched.rows_in
    return QuerySummary(
        query=spec.name,
        rows_in=rows_in,
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


class _SortedRuns:
    """Sorted, de-duplicated batches of one query spilled to a temp Parquet file, merged back in key order.

    Each batch is one run (row groups of _RUN_GROUP_ROWS); :meth:`merge` yields the union sorted by key with one row
    per key, the row of the earliest run winning (arrival order). Memory: one row group per run plus one merge step.
    """

    def __init__(self, folder: Path, key: str) -> None:
        make_private_dir(folder)
        remove_dead_temps(folder / "runs")  # spill files of a run that was killed
        fd, tmp = tempfile.mkstemp(prefix=f".runs.{os.getpid()}.", suffix=".tmp", dir=folder)
        os.fchmod(fd, FILE_MODE)
        os.close(fd)
        self.path = Path(tmp)
        self.key = key
        self._writer: pq.ParquetWriter | None = None
        self._runs: list[list[int]] = []
        self._groups = 0

    def add(self, table: pa.Table) -> None:
        """Spill one run: rows sorted by key, no key twice."""
        if table.num_rows == 0:
            return
        if self._writer is None:
            self._writer = pq.ParquetWriter(self.path, table.schema, compression="lz4", use_dictionary=False)
        self._writer.write_table(table, row_group_size=_RUN_GROUP_ROWS)
        count = -(-table.num_rows // _RUN_GROUP_ROWS)
        self._runs.append(list(range(self._groups, self._groups + count)))
        self._groups += count

    def merge(self) -> Iterator[pa.Table]:
        """Yield the runs' rows in key order, each key once (earliest run's row), in pieces."""
        if self._writer is None:
            return
        self._writer.close()
        source = pq.ParquetFile(self.path)
        queues = [list(groups) for groups in self._runs]
        buffers: list[pa.Table | None] = [None] * len(queues)
        last: str | None = None
        try:
            while True:
                for i, queue in enumerate(queues):
                    if (buffers[i] is None or buffers[i].num_rows == 0) and queue:
                        buffers[i] = source.read_row_group(queue.pop(0))
                active = [i for i, b in enumerate(buffers) if b is not None and b.num_rows]
                if not active:
                    return
                # Every row at or below the smallest buffered last key is in the buffers now: emit those.
                boundary = min(buffers[i].column(self.key)[-1].as_py() for i in active)
                pieces = []
                for i in active:
                    buf = buffers[i]
                    keys = buf.column(self.key)
                    if keys[0].as_py() > boundary:
                        continue
                    take = int(pc.sum(pc.less_equal(keys, boundary)).as_py())
                    pieces.append(buf.slice(0, take))
                    buffers[i] = buf.slice(take)
                step = pa.concat_tables(pieces)
                if len(pieces) > 1:
                    step = step.append_column(_ORD, pa.array(np.arange(step.num_rows)))
                    step = step.sort_by([(self.key, "ascending"), (_ORD, "ascending")]).drop_columns([_ORD])
                keys = step.column(self.key).combine_chunks()
                keep = np.ones(step.num_rows, dtype=bool)
                if step.num_rows > 1:
                    same = pc.equal(keys.slice(1), keys.slice(0, step.num_rows - 1))
                    keep[1:] = ~same.to_numpy(zero_copy_only=False)
                if last is not None and keys[0].as_py() == last:
                    keep[0] = False
                last = keys[-1].as_py()
                yield step.filter(pa.array(keep)) if not keep.all() else step
        finally:
            source.close()

    def remove(self) -> None:
        """Close and delete the spill file."""
        try:
            if self._writer is not None and self._writer.is_open:
                self._writer.close()
        finally:
            self.path.unlink(missing_ok=True)


@dataclass
class _Streamed:
    """Counts of a query fetched, validated and cleaned in batches (what FetchResult/ValidationResult give)."""

    rows_in: int = 0
    pages: int = 0
    retries: int = 0
    seconds: float = 0.0
    valid: int = 0
    rows_out: int = 0
    batches: int = 0
    extras: list[str] = field(default_factory=list)
    extra_counts: dict[str, int] = field(default_factory=dict)
    counts_by_reason: dict[str, int] = field(default_factory=dict)
    quarantined: list[pd.DataFrame] = field(default_factory=list)

    def quarantine_frame(self, spec: QuerySpec) -> pd.DataFrame:
        """All quarantined rows in the columns a single-batch validation gives (query columns, reason, column)."""
        raw = [c for c in spec.column_names if not spec.column(c).personal]
        columns = [*raw, "reason", "column"]
        if not self.quarantined:
            return pd.DataFrame({c: pd.Series([], dtype="string") for c in columns})
        frame = pd.concat([q.reindex(columns=columns) for q in self.quarantined], ignore_index=True)
        return frame.astype("string")

    def validation(self, spec: QuerySpec) -> ValidationResult:
        """A ValidationResult of the whole pull (without the valid rows) for the quarantine-share check."""
        quarantined = self.quarantine_frame(spec)
        return ValidationResult(
            query=spec.name,
            valid=pd.DataFrame(),
            quarantined=quarantined,
            counts_by_reason=dict(sorted(self.counts_by_reason.items())),
            extra_columns=dict(self.extra_counts),
            rows_in=self.rows_in,
        )


def _pages_frame(spec: QuerySpec, pages: list[Page], extras: list[str]) -> pd.DataFrame:
    """Raw strings of some pages, laid out as ``SlateClient.fetch_all`` lays out a whole answer."""
    frames = [
        pd.DataFrame({c: pd.Series([r.get(c) for r in page.rows], dtype="str") for c in page.columns})
        for page in pages
        if page.rows
    ]
    columns = [*spec.column_names, *extras]
    if not frames:
        return pd.DataFrame({c: pd.Series([], dtype="str") for c in columns})
    return pd.concat(frames, ignore_index=True).reindex(columns=columns).astype("str")


def _stream_interactions(
    client: SlateClient,
    store: ExtractStore,
    since: pd.Timestamp | None,
    until: pd.Timestamp,
    page_size: int,
    batch_rows: int,
    runs: _SortedRuns,
    timezone: str,
) -> _Streamed:
    """Fetch the interactions in batches of about ``batch_rows`` rows; validate, clean and spill each batch."""
    spec = INTERACTIONS
    out = _Streamed()
    started = time.monotonic()
    pending: list[Page] = []
    pending_rows = 0

    def flush() -> None:
        nonlocal pending, pending_rows
        raw = _pages_frame(spec, pending, out.extras)
        pending, pending_rows = [], 0
        result = validate(spec, raw, not_after=until, timezone=timezone)
        del raw
        for col, count in result.extra_columns.items():
            out.extra_counts[col] = out.extra_counts.get(col, 0) + count
        for why, count in result.counts_by_reason.items():
            out.counts_by_reason[why] = out.counts_by_reason.get(why, 0) + count
        if len(result.quarantined):
            out.quarantined.append(result.quarantined)
        out.valid += len(result.valid)
        cleaned, _ = clean_interactions(result.valid)
        runs.add(contract_table(spec, cleaned))
        out.batches += 1

    for page in client.fetch_pages(spec, since, until, page_size, timezone):
        out.pages += 1
        out.rows_in += len(page.rows)
        out.retries += page.retries
        for col in page.columns:
            if col not in spec.column_names and col not in out.extras:
                out.extras.append(col)
                out.extra_counts.setdefault(col, 0)
        pending.append(page)
        pending_rows += len(page.rows)
        if pending_rows >= batch_rows:
            flush()
    if pending_rows or out.batches == 0:
        flush()
    out.seconds = time.monotonic() - started
    log.info(
        "%s: %d rows fetched in %d pages (%d batches), %d quarantined %s, extra columns %s",
        spec.name,
        out.rows_in,
        out.pages,
        out.batches,
        sum(out.counts_by_reason.values()),
        dict(sorted(out.counts_by_reason.items())),
        sorted(out.extras),
    )
    return out


def extract_interval(
    client: SlateClient,
    store: ExtractStore,
    settings: Settings,
    interval_start: datetime | pd.Timestamp | str,
    interval_end: datetime | pd.Timestamp | str,
    full_history: bool | None = None,
    batch_rows: int = DEFAULT_BATCH_ROWS,
) -> IntervalSummary:
    """Extract the data interval ``[interval_start, interval_end)`` of both queries into the store.

    Pulls new and changed leads and the interactions stamped in the interval; on the first run (no stored interval
    ending at or before ``interval_start``) pulls the whole history up to ``interval_end`` instead. Validates,
    fails when a query's quarantined share passes ``settings.quarantine_max_share``, cleans, then writes the
    quarantine files, both extracts (staged together) and the summary, replacing a previous run of the interval.
    Interactions are processed in batches of about ``batch_rows`` rows (see the module doc); the files written do
    not depend on ``batch_rows``.

    Args:
        client: the Slate client. store: the extract store. settings: page_size, quarantine_max_share and
            slate_timezone (the window is sent as the instance's wall time; stamps come back as UTC).
        interval_start, interval_end: the data interval (aware values are converted to UTC).
        full_history: True forces a whole-history pull, False forbids it, None decides as above.
        batch_rows: interactions rows validated and cleaned at a time (>= 1; peak memory grows with it).
    Returns:
        The IntervalSummary (also written as JSON under the store's summary_dir).
    Raises:
        ValueError: start >= end or batch_rows < 1. SlateError: Slate failed (nothing stored).
        QuarantineLimitError: too many bad rows (the failing query's quarantined rows go to its ``.rejected.csv``
        beside the interval's quarantine file, for diagnosis; none of the interval's files is changed).
    """
    started = time.monotonic()
    if int(batch_rows) < 1:
        raise ValueError(f"batch_rows must be at least 1, got {batch_rows}")
    start, end = to_utc_naive(interval_start), to_utc_naive(interval_end)
    name = interval_name(start, end)
    full = (not has_earlier_extract(store, start)) if full_history is None else bool(full_history)
    since = None if full else start - timedelta(days=settings.extract_overlap_days)
    log.info("interval %s: %s pull, since=%s until=%s", name, "full-history" if full else "incremental", since, end)

    zone = settings.slate_timezone
    lead_fetch, lead_result = _fetch_and_validate(client, LEADS, since, end, settings.page_size, zone)
    if lead_result.quarantined_share > settings.quarantine_max_share:
        # Fail fast, before the other query is fetched. The rows go beside the interval's kept quarantine file, for
        # diagnosis: a refused run changes none of the interval's files.
        path = store.write_rejected(LEADS, start, end, lead_result.quarantined)
        check_quarantine_share(lead_result, settings.quarantine_max_share, LEADS, path)

    target = store.path(INTERACTIONS, start, end)
    runs = _SortedRuns(target.parent, INTERACTIONS.key)
    staged: StagedParquet | None = None
    try:
        streamed = _stream_interactions(client, store, since, end, settings.page_size, int(batch_rows), runs, zone)
        interaction_result = streamed.validation(INTERACTIONS)
        if interaction_result.quarantined_share > settings.quarantine_max_share:
            path = store.write_rejected(INTERACTIONS, start, end, interaction_result.quarantined)
            check_quarantine_share(interaction_result, settings.quarantine_max_share, INTERACTIONS, path)
        persons_fetch, persons_result = fetch_persons(client, settings, end)
        if persons_result.quarantined_share > settings.quarantine_max_share:
            path = store.write_rejected(PERSONS, start, end, persons_result.quarantined)
            check_quarantine_share(persons_result, settings.quarantine_max_share, PERSONS, path)
        staged = store.staged_parquet(INTERACTIONS, start, end)
        seen = SeenLookup(store, INTERACTIONS, start, end, full_history=full)
        stored_before = _stored_keys(store, start, end, since)
        late = 0
        for piece in runs.merge():
            # first_seen is added in Arrow: a pandas round trip of every piece costs ~20 s at 25M rows
            if since is not None:
                fresh = ~piece.column(INTERACTIONS.key).to_pandas().isin(stored_before).to_numpy()
                occurred = piece.column("occurred").to_numpy().astype("datetime64[us]")
                late += int((fresh & (occurred < start.to_datetime64())).sum())
            staged.append(piece.append_column(FIRST_SEEN, pa.array(seen.assign(piece), type=pa.timestamp("us"))))
        runs.remove()
        streamed.rows_out = staged.rows
        staged.finish()

        leads, lead_stats = clean_leads(lead_result.valid)
        leads = SeenLookup(store, LEADS, start, end, full_history=full).with_seen(leads)
        # The latest stored versions known at this interval's end (a re-run ignores what later intervals brought).
        known = store.read_all(LEADS, exclude=(start, end), as_of=end)[["person_guid", "updated"]]
        changed = int(leads["person_guid"].isin(known["person_guid"]).sum())
        same = leads.merge(known, on=["person_guid", "updated"], how="inner")
        gone = find_gone(persons_result, pd.concat([known["person_guid"], leads["person_guid"]]))

        paths = {q.name: store.path(q, start, end) for q in (LEADS, INTERACTIONS, PERSONS)}
        quarantine_paths = {q.name: store.quarantine_path(q, start, end) for q in (LEADS, INTERACTIONS, PERSONS)}
        interaction_stats = CleanStats(
            rows_in=streamed.valid, rows_out=streamed.rows_out, duplicates=streamed.valid - streamed.rows_out
        )
        summary = IntervalSummary(
            interval_start=start.isoformat(),
            interval_end=end.isoformat(),
            full_history=full,
            since=format_wire_datetime(since),
            until=format_wire_datetime(end) or "",
            leads=_query_summary(
                LEADS, lead_fetch, lead_result, lead_stats, str(paths[LEADS.name]), str(quarantine_paths[LEADS.name])
            ),
            interactions=_query_summary(
                INTERACTIONS,
                streamed,
                interaction_result,
                interaction_stats,
                str(paths[INTERACTIONS.name]),
                str(quarantine_paths[INTERACTIONS.name]),
            ),
            persons=_query_summary(
                PERSONS,
                persons_fetch,
                persons_result,
                CleanStats(rows_in=len(persons_result.valid), rows_out=len(gone)),
                str(paths[PERSONS.name]),
                str(quarantine_paths[PERSONS.name]),
            ),
            new_leads=len(leads) - changed,
            changed_leads=changed - len(same),
            reread_leads=len(same),
            new_interactions=streamed.rows_out,
            late_interactions=late,
            gone_persons=len(gone),
            overlap_days=0 if since is None else settings.extract_overlap_days,
            seconds=round(time.monotonic() - started, 3),
            summary_path=str(store.summary_path(start, end)),
            timezone=zone,
            wire_since=format_wire_datetime(since, zone),
            wire_until=format_wire_datetime(end, zone) or "",
        )
        # One commit: the extracts, the quarantine files and the summary move into place together (journaled).
        store.write_many(
            start,
            end,
            {LEADS.name: leads, PERSONS.name: gone},
            staged_files={INTERACTIONS.name: staged},
            quarantine={
                LEADS.name: lead_result.quarantined,
                INTERACTIONS.name: interaction_result.quarantined,
                PERSONS.name: persons_result.quarantined,
            },
            summary=summary.as_dict(),
        )
    except BaseException:
        runs.remove()
        if staged is not None and not store.journal_path(start, end).exists():  # a journaled commit completes later
            staged.abort()
        raise
    log.info(
        "interval %s: %d leads (%d new, %d changed), %d interactions, %.1f s",
        name,
        len(leads),
        summary.new_leads,
        changed,
        streamed.rows_out,
        summary.seconds,
    )
    return summary
