"""The per-interval extract store: immutable Parquet files per query and data interval, written atomically.

Layout (all files 0600, directories 0700)::

    <extracts_dir>/<query>/<start>_<end>.parquet        cleaned rows of the interval, sorted by the query's key
    <quarantine_dir>/<query>/<start>_<end>.csv          quarantined raw rows with `reason` and `column`
    <summary_dir>/<start>_<end>.json                    the interval's data-quality summary

``<start>``/``<end>`` are ``YYYYMMDD`` (``YYYYMMDDTHHMMSS`` when a bound is not midnight). A re-run of an interval
replaces its files whole (temp file in the same directory, fsync, ``os.replace``); identical input gives identical
bytes (rows sorted, no timestamps in the Parquet metadata), so re-runs are idempotent.

Each stored row carries ``first_seen``: the end of the interval whose pull first brought it, so that the store can
answer "what was known at T" (:meth:`ExtractStore.read_all` with ``as_of``). Weekly pulls overlap (they re-read
``LEADSCORE_EXTRACT_OVERLAP_DAYS`` before their week), so a row may be stored several times; each copy keeps the end
of its own interval, the earliest copy says when it became known, the latest known copy is the one used. On the first
write of an interval every row gets the interval's end. On a re-run, rows the previous version of the interval held
keep their ``first_seen``, and a row new to the interval that a later interval already holds keeps that later
interval's value: a backfill of week W after week W+1 never makes W+1's late arrivals visible to W. Files written
before this column existed read as if every row was first seen at its interval's end.

``persons`` extracts hold tombstones: the stored person GUIDs that the reconciliation query no longer lists (merged
away or deleted in Slate), with the interval that found them. From then on, :meth:`ExtractStore.read_all` drops the
person's lead and interactions.

``source.json`` beside the query folders records the Slate instance (host) and query GUIDs the extracts came from;
:meth:`ExtractStore.bind_source` stops a run against another source before anything is written.

An interval's files (its extracts, quarantine files and summary) are committed together: the list of moves is
written to ``<extracts_dir>/.commit-<start>_<end>.json`` first (a redo journal), then the files are moved into place
and the journal removed. A process killed between two moves leaves the journal; the next store opened on the folder
completes the moves before anything is read (``leadscore.files.recover``), so no reader sees an interval half new.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from leadscore.data.clean import latest_leads
from leadscore.data.contracts import (
    CONTRACTS,
    FIRST_SEEN,
    INTERVAL_NAME,
    conform,
    contract_table,
    empty_frame,
    interval_name,
    parse_stamp,
    spec_of,
    to_utc_naive,
)
from leadscore.data.seen import SeenLookup
from leadscore.data.staged import StagedParquet, csv_writer, json_writer, parquet_bytes_writer
from leadscore.files import atomic_write
from leadscore.files import commit as _commit
from leadscore.files import recover as _recover_journal
from leadscore.files import stage as _stage
from leadscore.settings import Settings
from leadscore.slate.queries import INTERACTIONS, LEADS, PERSONS, QuerySpec

SOURCE_FILE = "source.json"


def _union_interactions(parts: list[pd.DataFrame], key: str) -> pd.DataFrame:
    """The union of several intervals' interactions, one row per key (a later interval wins).

    Only rows stamped inside the time range two parts share can repeat (consecutive weeks share their overlap
    days; a full-history pull overlaps a week backfilled after it), so the de-duplication runs on those rows alone
    instead of on every key (22 s at 25M rows when nothing overlaps).
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


def _drop_dead(frame: pd.DataFrame, dead: pd.Index) -> pd.DataFrame:
    """``frame`` without the rows of dead (merged-away or deleted) persons."""
    if not len(dead) or not len(frame):
        return frame
    return frame[~frame["person_guid"].isin(dead)].reset_index(drop=True)


class SourceMismatchError(RuntimeError):
    """The extract store holds data of another Slate instance (or other queries) than this run's connection."""


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
        return self.root / spec_of(query).name / f"{interval_name(start, end)}.parquet"

    def quarantine_path(self, query: QuerySpec | str, start: Any, end: Any) -> Path:
        """The quarantine CSV of ``query`` for the interval."""
        return self.quarantine_dir / spec_of(query).name / f"{interval_name(start, end)}.csv"

    def summary_path(self, start: Any, end: Any) -> Path:
        """The data-quality summary JSON of the interval."""
        return self.summary_dir / f"{interval_name(start, end)}.json"

    # -- extracts ----------------------------------------------------------------------------------------------

    def _stage_extract(self, query: QuerySpec | str, start: Any, end: Any, frame: pd.DataFrame) -> tuple[Path, Path]:
        spec = spec_of(query)
        if FIRST_SEEN not in frame.columns:
            frame = SeenLookup(self, spec, start, end).with_seen(frame)
        table = contract_table(spec, frame, stored=True)
        target = self.path(spec, start, end)
        return _stage(target, parquet_bytes_writer(table)), target

    def write(self, query: QuerySpec | str, interval_start: Any, interval_end: Any, frame: pd.DataFrame) -> Path:
        """Write (or replace whole) the interval's extract of ``query``, atomically.

        Args:
            query: query (or name). interval_start, interval_end: the data interval ``[start, end)``.
            frame: cleaned rows with the query's contract columns (extra columns are dropped), and ``first_seen``
                (when absent it is set by :class:`SeenLookup`).
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
                others.append((_stage(target, csv_writer(rows)), target))
            if summary is not None:
                target = self.summary_path(interval_start, interval_end)
                others.append((_stage(target, json_writer(summary)), target))
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
        folder = self.root / spec_of(query).name
        if not folder.is_dir():
            return []
        out = []
        for p in folder.glob("*.parquet"):
            m = INTERVAL_NAME.match(p.stem)
            if m:
                out.append((parse_stamp(m.group(1)), parse_stamp(m.group(2))))
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
        spec = spec_of(query)
        self.recover()
        path = self.path(spec, interval_start, interval_end)
        if not path.is_file():
            raise FileNotFoundError(f"no {spec.name} extract for {interval_name(interval_start, interval_end)}: {path}")
        return conform(spec, pq.read_table(path).to_pandas())

    def _read_part(
        self, spec: QuerySpec, start: pd.Timestamp, end: pd.Timestamp, columns: list[str] | None, cut: Any
    ) -> pd.DataFrame:
        """One stored extract, only the rows first seen by ``cut`` (all when None), without ``first_seen``."""
        path = self.path(spec, start, end)
        has_seen = FIRST_SEEN in pq.read_schema(path).names
        filters = [(FIRST_SEEN, "<=", pd.Timestamp(cut).to_datetime64())] if cut is not None and has_seen else None
        frame = pq.read_table(path, columns=columns, filters=filters).to_pandas()
        return frame.drop(columns=[FIRST_SEEN], errors="ignore")

    def dead_persons(self, as_of: Any = None, exclude: tuple[Any, Any] | None = None) -> pd.Index:
        """Person GUIDs the reconciliation found merged away or deleted, as known at ``as_of`` (None: everything)."""
        folder = self.root / PERSONS.name
        if not folder.is_dir():
            return pd.Index([], dtype=object)
        dead = self.read_all(PERSONS, exclude=exclude, as_of=as_of, sort=False)
        return pd.Index(dead["person_guid"].dropna().astype(str).unique())

    def read_all(
        self,
        query: QuerySpec | str,
        exclude: tuple[Any, Any] | None = None,
        columns: list[str] | None = None,
        sort: bool = True,
        as_of: Any = None,
    ) -> pd.DataFrame:
        """The union of every stored interval of ``query``, as known at ``as_of``.

        For leads, the latest version per person (greatest ``updated``; a later interval wins a tie); for
        interactions, one row per interaction_guid (a later interval's copy wins). Persons found merged away or
        deleted (see :meth:`dead_persons`) are left out of leads and interactions.

        Args:
            query: query (or name).
            exclude: an interval ``(start, end)`` to leave out (e.g. the one being rewritten).
            columns: read only these columns (must include the key; no de-duplication by version then).
            sort: sort the union by key (deterministic output); callers that do not care about row order (features,
                scoring) pass False and save a sort of every interaction key (~11 s at 25M rows).
            as_of: only rows first seen by then (``first_seen <= as_of``): what a run at ``as_of`` knew, so that a
                backfill of a week sees what the week saw. None: every stored row.
        Returns:
            A frame in the query's contract (or the requested columns), sorted by key; empty when nothing is stored.
        """
        spec = spec_of(query)
        skip = interval_name(*exclude) if exclude else None
        cut = None if as_of is None else to_utc_naive(as_of)
        frames = []
        for start, end in self.intervals(spec):
            if interval_name(start, end) == skip:
                continue
            # Not skipped by its end alone: a full-history interval holds rows known before it (data.seen.OWN_STAMP).
            if cut is not None and end > cut and FIRST_SEEN not in pq.read_schema(self.path(spec, start, end)).names:
                continue  # written before first_seen existed: known from its end
            frames.append(self._read_part(spec, start, end, columns, cut))
        dead = pd.Index([], dtype=object) if spec.name == PERSONS.name else self.dead_persons(cut, exclude)
        if columns is not None:
            if not frames:
                return empty_frame(spec.name)[columns]
            both = pd.concat(frames, ignore_index=True).drop_duplicates(spec.key)
            if len(dead) and "person_guid" in both:
                both = both[~both["person_guid"].isin(dead)]
            return both.sort_values(spec.key).reset_index(drop=True)
        if not frames:
            return empty_frame(spec.name)
        contract = CONTRACTS[spec.name]
        parts = [f[list(contract)].astype(contract) for f in frames]
        if spec.name != INTERACTIONS.name:
            both = pd.concat(parts, ignore_index=True)
            out = latest_leads(both) if spec.name == LEADS.name else both.drop_duplicates(spec.key)
            return conform(spec, _drop_dead(out, dead))
        if len(parts) == 1:
            one = _drop_dead(parts[0], dead)
            return one if not sort or one[spec.key].is_monotonic_increasing else conform(spec, one)
        both = _drop_dead(_union_interactions(parts, spec.key), dead)
        return both.sort_values(spec.key, kind="stable").reset_index(drop=True) if sort else both

    # -- the source ----------------------------------------------------------------------------------------------

    @property
    def source_path(self) -> Path:
        """``<extracts_dir>/source.json``: which Slate the extracts came from."""
        return self.root / SOURCE_FILE

    def read_source(self) -> dict[str, Any] | None:
        """The recorded source (``{"host": ..., "queries": {name: GUID}}``), None when none is recorded."""
        if not self.source_path.is_file():
            return None
        return json.loads(self.source_path.read_text())

    def has_extracts(self) -> bool:
        """Whether any extract of any query is stored."""
        return any(self.intervals(name) for name in CONTRACTS)

    def bind_source(self, source: Mapping[str, Any]) -> None:
        """Record the source of the extracts, or stop when the stored extracts came from another one.

        An empty store (no extract) is (re)bound to ``source``. Otherwise the host must match and every query both
        name must have the same GUID; queries new to the record (e.g. ``persons``) are added to it.

        Args:
            source: ``{"host": <instance host>, "queries": {name: <query GUID>}}`` of this run's connection.
        Raises:
            SourceMismatchError: another source; nothing is written. The message names the way out.
        """
        wanted = {"host": str(source["host"]), "queries": {k: str(v) for k, v in dict(source["queries"]).items()}}
        current = self.read_source()
        if current is not None and self.has_extracts():
            diffs = []
            if current.get("host") != wanted["host"]:
                diffs.append(f"host {current.get('host')!r} vs {wanted['host']!r}")
            for name, guid in wanted["queries"].items():
                old = current.get("queries", {}).get(name)
                if old is not None and old != guid:
                    diffs.append(f"query {name!r} {old} vs {guid}")
            if diffs:
                raise SourceMismatchError(
                    f"the extracts in {self.root} came from another Slate source than this run's slate_api "
                    f"connection ({'; '.join(diffs)}); nothing was written. Point LEADSCORE_HOME at a new folder for "
                    "this source, or remove the old state with `make clean` (it deletes every extract, model and "
                    "score under LEADSCORE_HOME)"
                )
            if all(name in current.get("queries", {}) for name in wanted["queries"]):
                return
            wanted["queries"] = {**current.get("queries", {}), **wanted["queries"]}
        data = (json.dumps(wanted, indent=2, sort_keys=True) + "\n").encode("utf-8")
        atomic_write(self.source_path, lambda fh: fh.write(data))

    # -- quarantine and summaries ------------------------------------------------------------------------------

    def write_quarantine(
        self, query: QuerySpec | str, interval_start: Any, interval_end: Any, frame: pd.DataFrame
    ) -> Path:
        """Write (replace) the interval's quarantine CSV of ``query`` (header only when nothing was quarantined)."""
        return atomic_write(self.quarantine_path(query, interval_start, interval_end), csv_writer(frame))

    def rejected_path(self, query: QuerySpec | str, start: Any, end: Any) -> Path:
        """Where the quarantined rows of a run refused for too many bad rows go (beside, never over, the kept one)."""
        return self.quarantine_dir / spec_of(query).name / f"{interval_name(start, end)}.rejected.csv"

    def write_rejected(
        self, query: QuerySpec | str, interval_start: Any, interval_end: Any, frame: pd.DataFrame
    ) -> Path:
        """Write the quarantined rows of a refused run for diagnosis; the interval's stored files stay as they were."""
        return atomic_write(self.rejected_path(query, interval_start, interval_end), csv_writer(frame))

    def write_summary(self, interval_start: Any, interval_end: Any, summary: Mapping[str, Any]) -> Path:
        """Write (replace) the interval's data-quality summary as sorted, indented JSON."""
        return atomic_write(self.summary_path(interval_start, interval_end), json_writer(summary))

    def read_summary(self, interval_start: Any, interval_end: Any) -> dict[str, Any]:
        """The interval's data-quality summary. Raises FileNotFoundError when the interval was never stored."""
        return json.loads(self.summary_path(interval_start, interval_end).read_text())
