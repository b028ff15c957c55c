"""The per-interval extract store: immutable Parquet files per query and data interval, written atomically.

Layout (all files 0600, directories 0700)::

    <extracts_dir>/<query>/<start>_<end>.parquet        cleaned rows of the interval, sorted by the query's key
    <quarantine_dir>/<query>/<start>_<end>.csv          quarantined raw rows with `reason` and `column`
    <summary_dir>/<start>_<end>.json                    the interval's data-quality summary

``<start>``/``<end>`` are ``YYYYMMDD`` (``YYYYMMDDTHHMMSS`` when a bound is not midnight). A re-run of an interval
replaces its files whole (temp file in the same directory, fsync, ``os.replace``); identical input gives identical
bytes (rows sorted, no timestamps in the Parquet metadata), so re-runs are idempotent.

An interval's files (both extracts, both quarantine files, the summary) are committed together: the list of moves is
written to ``<extracts_dir>/.commit-<start>_<end>.json`` first (a redo journal), then the files are moved into place
and the journal removed. A process killed between two moves leaves the journal; the next store opened on the folder
completes the moves before anything is read (``leadscore.files.recover``), so no reader sees an interval half new.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from leadscore.data.clean import empty_interactions, empty_leads, latest_leads
from leadscore.data.tables import INTERACTION_COLUMNS, LEAD_COLUMNS
from leadscore.files import FILE_MODE, atomic_write, remove_dead_temps
from leadscore.files import commit as _commit
from leadscore.files import private_dir as make_private_dir
from leadscore.files import recover as _recover_journal
from leadscore.files import stage as _stage
from leadscore.settings import Settings
from leadscore.slate.queries import INTERACTIONS, LEADS, QUERIES, QuerySpec

CONTRACTS: dict[str, dict[str, str]] = {LEADS.name: LEAD_COLUMNS, INTERACTIONS.name: INTERACTION_COLUMNS}
_NAME = re.compile(r"^(\d{8}(?:T\d{6})?)_(\d{8}(?:T\d{6})?)$")


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


def _parse_stamp(text: str) -> pd.Timestamp:
    return pd.Timestamp(datetime.strptime(text, "%Y%m%dT%H%M%S" if "T" in text else "%Y%m%d"))


def _spec(query: QuerySpec | str) -> QuerySpec:
    name = query if isinstance(query, str) else query.name
    if name not in CONTRACTS:
        raise ValueError(f"unknown query {name!r}; known: {sorted(CONTRACTS)}")
    return QUERIES[name]


def conform(query: QuerySpec | str, frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` restricted to the query's cleaned contract (order and dtypes), rows sorted by the key.

    Raises:
        KeyError: a contract column is missing.
    """
    spec = _spec(query)
    contract = CONTRACTS[spec.name]
    missing = [c for c in contract if c not in frame.columns]
    if missing:
        raise KeyError(f"{spec.name} frame lacks contract columns {missing}")
    out = frame[list(contract)].astype(contract)
    return out.sort_values(spec.key, kind="stable").reset_index(drop=True)


def _union_interactions(parts: list[pd.DataFrame], key: str) -> pd.DataFrame:
    """The union of several intervals' interactions, one row per key (a later interval wins).

    Only rows stamped inside the time range two parts share can repeat (weekly intervals are disjoint; a
    full-history pull overlaps a week backfilled after it), so the de-duplication runs on those rows alone instead
    of on every key (22 s at 25M rows when nothing overlaps).
    """
    ranges = [(p["occurred"].min(), p["occurred"].max()) for p in parts]
    both = pd.concat(parts, ignore_index=True)
    occurred = both["occurred"].to_numpy()
    starts = np.cumsum([0] + [len(p) for p in parts])
    candidate = np.zeros(len(both), dtype=bool)
    for i in range(len(parts)):
        for j in range(i + 1, len(parts)):
            lo, hi = max(ranges[i][0], ranges[j][0]), min(ranges[i][1], ranges[j][1])
            if pd.isna(lo) or pd.isna(hi) or lo > hi:
                continue
            for k in (i, j):
                seg = slice(starts[k], starts[k + 1])
                candidate[seg] |= (occurred[seg] >= np.datetime64(lo)) & (occurred[seg] <= np.datetime64(hi))
    if not candidate.any():
        return both
    rows = np.flatnonzero(candidate)
    repeated = both.iloc[rows].duplicated(key, keep="last").to_numpy()
    return both.drop(index=both.index[rows[repeated]]).reset_index(drop=True)


def _parquet_bytes_writer(table: pa.Table) -> Callable[[IO[bytes]], None]:
    def write(fh: IO[bytes]) -> None:
        pq.write_table(table, fh, compression="zstd", use_dictionary=True, write_statistics=True)

    return write


# pyarrow's default row-group length (ParquetWriter.write_table with row_group_size=None, as write_table uses it).
PARQUET_ROW_GROUP_ROWS = 1024 * 1024


def contract_table(query: QuerySpec | str, frame: pd.DataFrame) -> pa.Table:
    """``frame`` conformed to the query's contract (see :func:`conform`) as the Arrow table the store writes."""
    return pa.Table.from_pandas(conform(query, frame), preserve_index=False)


class StagedParquet:
    """One extract written in pieces into a temp file beside its target, giving the bytes ``write`` would give.

    Rows are appended as Arrow tables already in the contract (see :func:`contract_table`) and in the store's key
    order; they are cut into row groups of PARQUET_ROW_GROUP_ROWS, each written as one contiguous chunk, which is how
    ``pq.write_table`` lays out the whole table. :meth:`finish` returns ``(temp, target)`` for
    :meth:`ExtractStore.write_many`; :meth:`abort` removes the temp file. Memory: at most one row group buffered.

    Args:
        target: the extract's final path (its folder is created 0700). query: the query (or name), for the schema.
    """

    def __init__(self, target: Path, query: QuerySpec | str) -> None:
        self.target = Path(target)
        self.spec = _spec(query)
        make_private_dir(self.target.parent)
        remove_dead_temps(self.target)
        fd, tmp = tempfile.mkstemp(prefix=f".{self.target.name}.{os.getpid()}.", suffix=".tmp", dir=self.target.parent)
        self.tmp = Path(tmp)
        try:
            os.fchmod(fd, FILE_MODE)
            self._fh: IO[bytes] = os.fdopen(fd, "wb")
        except BaseException:
            os.close(fd)
            self.tmp.unlink(missing_ok=True)
            raise
        self._writer: pq.ParquetWriter | None = None
        self._pending: list[pa.Table] = []
        self._pending_rows = 0
        self.rows = 0

    def append(self, table: pa.Table) -> None:
        """Append rows (contract schema, continuing the key order). Raises ValueError on a schema mismatch."""
        if table.num_rows == 0:
            return
        if self._writer is None:
            self._writer = pq.ParquetWriter(
                self._fh, table.schema, compression="zstd", use_dictionary=True, write_statistics=True
            )
        self._pending.append(table)
        self._pending_rows += table.num_rows
        self.rows += table.num_rows
        while self._pending_rows >= PARQUET_ROW_GROUP_ROWS:
            self._flush(PARQUET_ROW_GROUP_ROWS)

    def _flush(self, rows: int) -> None:
        assert self._writer is not None
        buffered = pa.concat_tables(self._pending)
        self._writer.write_table(buffered.slice(0, rows).combine_chunks(), row_group_size=PARQUET_ROW_GROUP_ROWS)
        rest = buffered.slice(rows)
        self._pending = [rest] if rest.num_rows else []
        self._pending_rows = rest.num_rows

    def finish(self) -> tuple[Path, Path]:
        """Write the last row group, close and fsync the temp file; returns ``(temp, target)`` (again if repeated)."""
        if self._fh.closed:
            return self.tmp, self.target
        try:
            if self._writer is None:  # no rows at all: the same bytes as writing the empty contract frame
                _parquet_bytes_writer(contract_table(self.spec, _empty(self.spec.name)))(self._fh)
            else:
                if self._pending_rows:
                    self._flush(self._pending_rows)
                self._writer.close()
            self._fh.flush()
            os.fsync(self._fh.fileno())
            self._fh.close()
        except BaseException:
            self.abort()
            raise
        return self.tmp, self.target

    def abort(self) -> None:
        """Close and remove the temp file (the target is untouched)."""
        try:
            if self._writer is not None and self._writer.is_open:
                self._writer.close()
        except Exception:  # closing a half-written file may fail; the file is removed anyway
            pass
        finally:
            self._pending = []
            if not self._fh.closed:
                self._fh.close()
            self.tmp.unlink(missing_ok=True)


def _csv_writer(frame: pd.DataFrame) -> Callable[[IO[bytes]], None]:
    data = frame.to_csv(index=False, lineterminator="\n").encode("utf-8")
    return lambda fh: fh.write(data)


def _json_writer(summary: Mapping[str, Any]) -> Callable[[IO[bytes]], None]:
    data = (json.dumps(summary, indent=2, sort_keys=True, default=str) + "\n").encode("utf-8")
    return lambda fh: fh.write(data)


def _empty(query: str) -> pd.DataFrame:
    return empty_leads() if query == LEADS.name else empty_interactions()


class ExtractStore:
    """Immutable per-interval extracts of each query, their quarantine files and data-quality summaries.

    Args:
        root: directory of the Parquet extracts (``Settings.extracts_dir``).
        quarantine_dir: directory of the quarantine files (default ``<root>/../quarantine``).
        summary_dir: directory of the summaries (default ``<root>/../data_quality``).
    """

    def __init__(self, root: Path, quarantine_dir: Path | None = None, summary_dir: Path | None = None) -> None:
        self.root = Path(root)
        self.quarantine_dir = Path(quarantine_dir) if quarantine_dir else self.root.parent / "quarantine"
        self.summary_dir = Path(summary_dir) if summary_dir else self.root.parent / "data_quality"
        self.recover()

    def recover(self) -> list[str]:
        """Complete the commits of intervals that a killed process left half done; returns their names.

        Called when the store is opened and before every read or write of an interval (another process may have
        crashed in between), so an interval is never seen with some files new and others old.
        """
        done = []
        if self.root.is_dir():
            for journal in sorted(self.root.glob(".commit-*.json")):
                if _recover_journal(journal):
                    done.append(journal.stem.removeprefix(".commit-"))
        return done

    def journal_path(self, start: Any, end: Any) -> Path:
        """The redo journal of an interval's commit (exists only while, or after a crash during, the commit)."""
        return self.root / f".commit-{interval_name(start, end)}.json"

    @classmethod
    def from_settings(cls, settings: Settings) -> ExtractStore:
        """The store under ``settings.home``: extracts_dir, quarantine_dir and ``reports/data_quality``."""
        return cls(settings.extracts_dir, settings.quarantine_dir, settings.reports_dir / "data_quality")

    def __repr__(self) -> str:
        return f"ExtractStore(root={self.root!s}, quarantine_dir={self.quarantine_dir!s})"

    # -- paths --------------------------------------------------------------------------------------------------

    def path(self, query: QuerySpec | str, start: Any, end: Any) -> Path:
        """The Parquet file of ``query`` for the interval ``[start, end)``."""
        return self.root / _spec(query).name / f"{interval_name(start, end)}.parquet"

    def quarantine_path(self, query: QuerySpec | str, start: Any, end: Any) -> Path:
        """The quarantine CSV of ``query`` for the interval."""
        return self.quarantine_dir / _spec(query).name / f"{interval_name(start, end)}.csv"

    def summary_path(self, start: Any, end: Any) -> Path:
        """The data-quality summary JSON of the interval."""
        return self.summary_dir / f"{interval_name(start, end)}.json"

    # -- extracts ----------------------------------------------------------------------------------------------

    def _stage_extract(self, query: QuerySpec | str, start: Any, end: Any, frame: pd.DataFrame) -> tuple[Path, Path]:
        spec = _spec(query)
        table = pa.Table.from_pandas(conform(spec, frame), preserve_index=False)
        target = self.path(spec, start, end)
        return _stage(target, _parquet_bytes_writer(table)), target

    def write(self, query: QuerySpec | str, interval_start: Any, interval_end: Any, frame: pd.DataFrame) -> Path:
        """Write (or replace whole) the interval's extract of ``query``, atomically.

        Args:
            query: query (or name). interval_start, interval_end: the data interval ``[start, end)``.
            frame: cleaned rows with the query's contract columns (extra columns are dropped).
        Returns:
            The file written.
        Raises:
            ValueError: unknown query or start >= end. KeyError: a contract column is missing. OSError: disk errors
            (the previous file, if any, is then left intact).
        """
        staged = self._stage_extract(query, interval_start, interval_end, frame)
        _commit([staged])
        return staged[1]

    def staged_parquet(self, query: QuerySpec | str, interval_start: Any, interval_end: Any) -> StagedParquet:
        """A :class:`StagedParquet` for the interval's extract of ``query`` (commit it with ``write_many``)."""
        self.recover()
        return StagedParquet(self.path(query, interval_start, interval_end), query)

    def write_many(
        self,
        interval_start: Any,
        interval_end: Any,
        frames: Mapping[str, pd.DataFrame],
        staged_files: Mapping[str, StagedParquet] | None = None,
        quarantine: Mapping[str, pd.DataFrame] | None = None,
        summary: Mapping[str, Any] | None = None,
    ) -> dict[str, Path]:
        """Write several queries' extracts of one interval: all staged first, then all moved into place together.

        Args:
            interval_start, interval_end: the interval. frames: query name -> cleaned frame.
            staged_files: query name -> a finished-or-open StagedParquet of this interval, moved into place together
                with ``frames`` (on any failure before the move, their temp files are removed too).
            quarantine: query name -> quarantined rows, written as the interval's quarantine files in the same
                commit. summary: the interval's data-quality summary, written in the same commit.
        Returns:
            query name -> file written.
        """
        self.recover()
        staged: dict[str, tuple[Path, Path]] = {}
        others: list[tuple[Path, Path]] = []
        pending = dict(staged_files or {})
        try:
            for name, part in pending.items():
                if part.target != self.path(name, interval_start, interval_end):
                    raise ValueError(f"staged {name} file {part.target} is not this interval's extract")
                staged[name] = part.finish()
            for name, frame in frames.items():
                staged[name] = self._stage_extract(name, interval_start, interval_end, frame)
            for name, rows in (quarantine or {}).items():
                target = self.quarantine_path(name, interval_start, interval_end)
                others.append((_stage(target, _csv_writer(rows)), target))
            if summary is not None:
                target = self.summary_path(interval_start, interval_end)
                others.append((_stage(target, _json_writer(summary)), target))
        except BaseException:
            for tmp, _ in [*staged.values(), *others]:
                tmp.unlink(missing_ok=True)
            for part in pending.values():
                part.abort()
            raise
        journal = self.journal_path(interval_start, interval_end)
        _commit([*staged.values(), *others], journal=journal, name="extract.commit")
        return {name: target for name, (_, target) in staged.items()}

    def intervals(self, query: QuerySpec | str) -> list[tuple[pd.Timestamp, pd.Timestamp]]:
        """The intervals ``(start, end)`` stored for ``query``, sorted by start then end."""
        self.recover()
        folder = self.root / _spec(query).name
        if not folder.is_dir():
            return []
        out = []
        for p in folder.glob("*.parquet"):
            m = _NAME.match(p.stem)
            if m:
                out.append((_parse_stamp(m.group(1)), _parse_stamp(m.group(2))))
        return sorted(out)

    def has_interval(self, query: QuerySpec | str, interval_start: Any, interval_end: Any) -> bool:
        """Whether the interval's extract of ``query`` exists."""
        return self.path(query, interval_start, interval_end).is_file()

    def latest_end(self, query: QuerySpec | str) -> pd.Timestamp | None:
        """The latest interval end stored for ``query``, None when there is none."""
        ivs = self.intervals(query)
        return max(e for _, e in ivs) if ivs else None

    def read(self, query: QuerySpec | str, interval_start: Any, interval_end: Any) -> pd.DataFrame:
        """The interval's extract of ``query`` in its contract. Raises FileNotFoundError naming the file."""
        spec = _spec(query)
        self.recover()
        path = self.path(spec, interval_start, interval_end)
        if not path.is_file():
            raise FileNotFoundError(f"no {spec.name} extract for {interval_name(interval_start, interval_end)}: {path}")
        return conform(spec, pq.read_table(path).to_pandas())

    def read_all(
        self,
        query: QuerySpec | str,
        exclude: tuple[Any, Any] | None = None,
        columns: list[str] | None = None,
        sort: bool = True,
    ) -> pd.DataFrame:
        """The union of every stored interval of ``query``.

        For leads, the latest version per person (greatest ``updated``; a later interval wins a tie); for
        interactions, one row per interaction_guid.

        Args:
            query: query (or name).
            exclude: an interval ``(start, end)`` to leave out (e.g. the one being rewritten).
            columns: read only these columns (must include the key; no de-duplication by version then).
            sort: sort the union by key (deterministic output); callers that do not care about row order (features,
                scoring) pass False and save a sort of every interaction key (~11 s at 25M rows).
        Returns:
            A frame in the query's contract (or the requested columns), sorted by key; empty when nothing is stored.
        """
        spec = _spec(query)
        skip = interval_name(*exclude) if exclude else None
        frames = []
        for start, end in self.intervals(spec):
            if interval_name(start, end) == skip:
                continue
            frames.append(pq.read_table(self.path(spec, start, end), columns=columns).to_pandas())
        if columns is not None:
            if not frames:
                return _empty(spec.name)[columns]
            both = pd.concat(frames, ignore_index=True).drop_duplicates(spec.key)
            return both.sort_values(spec.key).reset_index(drop=True)
        if not frames:
            return _empty(spec.name)
        contract = CONTRACTS[spec.name]
        parts = [f[list(contract)].astype(contract) for f in frames]
        if spec.name == LEADS.name:
            return conform(spec, latest_leads(pd.concat(parts, ignore_index=True)))
        if len(parts) == 1:
            return parts[0] if not sort or parts[0][spec.key].is_monotonic_increasing else conform(spec, parts[0])
        both = _union_interactions(parts, spec.key)
        return both.sort_values(spec.key, kind="stable").reset_index(drop=True) if sort else both

    # -- quarantine and summaries ------------------------------------------------------------------------------

    def write_quarantine(
        self, query: QuerySpec | str, interval_start: Any, interval_end: Any, frame: pd.DataFrame
    ) -> Path:
        """Write (replace) the interval's quarantine CSV of ``query`` (header only when nothing was quarantined)."""
        return atomic_write(self.quarantine_path(query, interval_start, interval_end), _csv_writer(frame))

    def rejected_path(self, query: QuerySpec | str, start: Any, end: Any) -> Path:
        """Where the quarantined rows of a run refused for too many bad rows go (beside, never over, the kept one)."""
        return self.quarantine_dir / _spec(query).name / f"{interval_name(start, end)}.rejected.csv"

    def write_rejected(
        self, query: QuerySpec | str, interval_start: Any, interval_end: Any, frame: pd.DataFrame
    ) -> Path:
        """Write the quarantined rows of a refused run for diagnosis; the interval's stored files stay as they were."""
        return atomic_write(self.rejected_path(query, interval_start, interval_end), _csv_writer(frame))

    def write_summary(self, interval_start: Any, interval_end: Any, summary: Mapping[str, Any]) -> Path:
        """Write (replace) the interval's data-quality summary as sorted, indented JSON."""
        return atomic_write(self.summary_path(interval_start, interval_end), _json_writer(summary))

    def read_summary(self, interval_start: Any, interval_end: Any) -> dict[str, Any]:
        """The interval's data-quality summary. Raises FileNotFoundError when the interval was never stored."""
        return json.loads(self.summary_path(interval_start, interval_end).read_text())
