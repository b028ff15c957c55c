"""When each stored row first became known: the ``first_seen`` rule of the extract store (see ``data.store``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from leadscore.data.contracts import FIRST_SEEN, VERSION_KEYS, interval_name, spec_of, to_utc_naive, version_ids
from leadscore.slate.queries import QuerySpec


class _Store(Protocol):
    def path(self, query: QuerySpec | str, start: Any, end: Any) -> Path: ...
    def intervals(self, query: QuerySpec | str) -> list[tuple[pd.Timestamp, pd.Timestamp]]: ...


def _read_seen(path: Path, name: str, end: pd.Timestamp, filters: list | None = None) -> pd.DataFrame:
    """The version keys and ``first_seen`` of one stored extract (files without the column: the interval's end)."""
    have = pq.read_schema(path).names
    cols = [*VERSION_KEYS[name], *([FIRST_SEEN] if FIRST_SEEN in have else [])]
    frame = pq.read_table(path, columns=cols, filters=filters).to_pandas()
    if FIRST_SEEN not in frame:
        frame[FIRST_SEEN] = end
    return frame


class SeenLookup:
    """When each row of one interval's new extract first became known (the rule is in the module doc).

    Args:
        store: the store. query: the query (or name). interval_start, interval_end: the interval being written.
    """

    def __init__(self, store: _Store, query: QuerySpec | str, interval_start: Any, interval_end: Any) -> None:
        self.name = spec_of(query).name
        self.end = to_utc_naive(interval_end)
        self.previous: pd.Series | None = None
        self.later: pd.Series | None = None
        path = store.path(self.name, interval_start, interval_end)
        if not path.is_file():
            return  # first write of the interval: everything is first seen at its end
        prev = _read_seen(path, self.name, self.end)
        self.previous = pd.Series(prev[FIRST_SEEN].to_numpy(), index=version_ids(self.name, prev))
        self.previous = self.previous[~self.previous.index.duplicated()]
        later = [
            _read_seen(store.path(self.name, s, e), self.name, e)
            for s, e in store.intervals(self.name)
            if e > self.end and interval_name(s, e) != path.stem
        ]
        if later:
            both = pd.concat(later, ignore_index=True)
            self.later = pd.Series(both[FIRST_SEEN].to_numpy(), index=version_ids(self.name, both))
            self.later = self.later.groupby(level=0).min()

    def assign(self, frame: pd.DataFrame) -> np.ndarray:
        """``first_seen`` (datetime64[us]) of each row of ``frame`` (which holds the query's version keys)."""
        out = np.full(len(frame), np.datetime64(self.end, "us"))
        if self.previous is None or not len(frame):
            return out
        ids = version_ids(self.name, frame)
        found = self.previous.reindex(ids).to_numpy(dtype="datetime64[us]")
        if self.later is not None:
            later = self.later.reindex(ids).to_numpy(dtype="datetime64[us]")
            found = np.where(np.isnat(found), later, found)
        return np.where(np.isnat(found), out, found)

    def with_seen(self, frame: pd.DataFrame) -> pd.DataFrame:
        """``frame`` with its ``first_seen`` column set by :meth:`assign`."""
        return frame.assign(**{FIRST_SEEN: self.assign(frame)})
