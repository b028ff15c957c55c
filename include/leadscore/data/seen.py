"""When each stored row first became known: the ``first_seen`` rule of the extract store (see ``data.store``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from leadscore.data.contracts import FIRST_SEEN, VERSION_KEYS, interval_name, spec_of, to_utc_naive
from leadscore.slate.queries import QuerySpec

_ABSENT = np.iinfo(np.int64).min
# A full-history pull says what Slate held, not when it arrived: each row counts as known from its own stamp (an
# interaction when it occurred, a lead from its first origin), so that training or a backfill as of a date before
# the first pull's end sees the history as it stood then. Weekly pulls record real arrival (their interval's end).
OWN_STAMP: dict[str, str] = {"interactions": "occurred", "leads": "origin_date"}


class _Store(Protocol):
    def path(self, query: QuerySpec | str, start: Any, end: Any) -> Path: ...
    def intervals(self, query: QuerySpec | str) -> list[tuple[pd.Timestamp, pd.Timestamp]]: ...


def _ids(name: str, table: pa.Table) -> pa.Array:
    """One string per row naming its version (VERSION_KEYS), in Arrow: a re-run of a full-history interval holds
    tens of millions of keys, too many for a pandas index of Python strings."""
    keys = VERSION_KEYS[name]
    ids = pc.cast(table.column(keys[0]), pa.large_string())
    for col in keys[1:]:
        stamp = pc.cast(pc.cast(pc.cast(table.column(col), pa.timestamp("us")), pa.int64()), pa.large_string())
        ids = pc.binary_join_element_wise(ids, stamp, pa.scalar("|", pa.large_string()))
    return ids.combine_chunks() if isinstance(ids, pa.ChunkedArray) else ids


def _read_seen(path: Path, name: str, end: pd.Timestamp) -> pa.Table:
    """Version ids and ``first_seen`` (int64 us) of one stored extract (files without the column: its end)."""
    have = pq.read_schema(path).names
    cols = [*VERSION_KEYS[name], *([FIRST_SEEN] if FIRST_SEEN in have else [])]
    table = pq.read_table(path, columns=cols)
    if FIRST_SEEN in have:
        seen = pc.cast(pc.cast(table.column(FIRST_SEEN), pa.timestamp("us")), pa.int64())
    else:
        seen = pa.array(np.full(table.num_rows, pd.Timestamp(end).value // 1000, dtype=np.int64))
    return pa.table({"id": _ids(name, table), "seen": seen})


class SeenLookup:
    """When each row of one interval's new extract first became known (the rule is in the module doc).

    Args:
        store: the store. query: the query (or name). interval_start, interval_end: the interval being written.
        full_history: the rows come from a full-history pull: new rows are known from their own stamp
            (``OWN_STAMP``) instead of the interval's end.
    """

    def __init__(
        self, store: _Store, query: QuerySpec | str, interval_start: Any, interval_end: Any, full_history: bool = False
    ) -> None:
        self.name = spec_of(query).name
        self.end = to_utc_naive(interval_end)
        self.full_history = full_history and self.name in OWN_STAMP
        self.previous: pa.Table | None = None
        self.later: pa.Table | None = None
        path = store.path(self.name, interval_start, interval_end)
        if not path.is_file():
            return  # first write of the interval: everything is first seen at its end
        self.previous = _read_seen(path, self.name, self.end)
        later = [
            _read_seen(store.path(self.name, s, e), self.name, e)
            for s, e in store.intervals(self.name)
            if e > self.end and interval_name(s, e) != path.stem
        ]
        if later:
            both = pa.concat_tables(later).group_by("id").aggregate([("seen", "min")])
            self.later = both.rename_columns(["id", "seen"])

    @staticmethod
    def _find(ids: pa.Array, table: pa.Table) -> np.ndarray:
        """``seen`` of each id in ``table`` (int64 us), the int64 minimum where it is absent."""
        at = pc.index_in(ids, value_set=table.column("id").combine_chunks())
        pos = np.asarray(at.fill_null(-1).to_numpy(zero_copy_only=False), dtype=np.int64)
        seen = np.asarray(table.column("seen").to_numpy(), dtype=np.int64)
        return np.where(pos >= 0, seen[np.maximum(pos, 0)] if len(seen) else 0, _ABSENT)

    def assign(self, rows: pd.DataFrame | pa.Table) -> np.ndarray:
        """``first_seen`` (datetime64[us]) of each row of ``rows`` (which hold the query's version keys)."""
        out = np.full(len(rows), np.datetime64(self.end, "us"))
        if self.full_history and len(rows):
            own = rows[OWN_STAMP[self.name]]
            own = own.to_numpy() if isinstance(own, pd.Series) else own.to_numpy(zero_copy_only=False)
            own = np.asarray(own, dtype="datetime64[us]")
            out = np.where(np.isnat(own) | (own > out), out, own)
        if self.previous is None or not len(rows):
            return out
        if isinstance(rows, pd.DataFrame):
            rows = pa.Table.from_pandas(rows[list(VERSION_KEYS[self.name])], preserve_index=False)
        ids = _ids(self.name, rows)
        found = self._find(ids, self.previous)
        if self.later is not None:
            found = np.where(found == _ABSENT, self._find(ids, self.later), found)
        return np.where(found == _ABSENT, out, found.astype("datetime64[us]"))

    def with_seen(self, frame: pd.DataFrame) -> pd.DataFrame:
        """``frame`` with its ``first_seen`` column set by :meth:`assign`."""
        return frame.assign(**{FIRST_SEEN: self.assign(frame)})
