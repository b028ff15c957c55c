"""The interaction history as numeric event arrays, read with DuckDB from the store's Parquet extracts or from a frame.

``data.features`` needs, per interaction of the persons it describes, only numbers: whose it is, when it occurred and
what it was. Materializing the history as a pandas frame of strings first (25M rows at 1,000,000 leads) took most of
the weekly run's time and memory; here DuckDB scans the columns it needs and returns four numeric arrays.

What is read equals ``ExtractStore.read_all(INTERACTIONS, as_of=...)`` (see ``data.store``): rows first seen by the
cut (files written before ``first_seen`` existed count as known from their interval's end), one row per
``interaction_guid`` where intervals overlap in time (the later interval's copy wins, as ``_union_interactions``),
persons found merged away or deleted left out. A frame is read as it is (no de-duplication), as before.

Each row's (kind, detail) becomes the index of a distinct pair: the caller classifies the few distinct pairs
(page kinds of URLs, activity codes) in Python and maps them back by index.
"""

from __future__ import annotations

import atexit
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from leadscore.data.contracts import FIRST_SEEN, to_utc_naive
from leadscore.slate.queries import INTERACTIONS, QuerySpec

if TYPE_CHECKING:
    import duckdb

    from leadscore.data.store import ExtractStore

# DuckDB's own memory (scan buffers, hash tables); the result arrays are counted apart. Spills to a private temporary
# folder beyond it, so a store whose intervals overlap entirely still de-duplicates within the weekly run's budget.
DUCKDB_MEMORY_LIMIT = "768MB"
DUCKDB_THREADS = 2
_COLUMNS = ("person_guid", "kind", "detail", "occurred")


class EventReadError(ValueError):
    """The interaction rows break the cleaned-table contract (data.tables.INTERACTION_COLUMNS)."""


@dataclass(frozen=True)
class StoredInteractions:
    """The interactions of an extract store as known at ``as_of`` (None: every stored row), read when needed.

    Stands for ``store.read_all("interactions", as_of=as_of)`` wherever ``data.features`` takes interactions.
    """

    store: ExtractStore
    as_of: pd.Timestamp | None = None


def stored_interactions(store: ExtractStore, as_of: Any = None) -> StoredInteractions:
    """The interactions of ``store`` as known at ``as_of`` (tz-aware values converted to UTC), for ``features_at``."""
    return StoredInteractions(store, None if as_of is None else to_utc_naive(as_of))


@dataclass(frozen=True)
class EventArrays:
    """One entry per interaction of the wanted persons, in no particular order.

    Attributes:
        code: int32 position of the person in the ``persons`` passed to :func:`read_events`.
        occurred_us: int64 microseconds since the epoch (UTC).
        pair: int32 index into ``pair_kind``/``pair_detail`` of the row's (kind, detail).
        pair_kind, pair_detail: the distinct (kind, detail) pairs as object arrays (detail None when missing or when
            the kind's detail was not asked for).
    """

    code: np.ndarray
    occurred_us: np.ndarray
    pair: np.ndarray
    pair_kind: np.ndarray
    pair_detail: np.ndarray


_DATABASE: list[duckdb.DuckDBPyConnection] = []  # one in-memory DuckDB per process; opening one costs ~0.1 s


@contextmanager
def connection() -> Iterator[duckdb.DuckDBPyConnection]:
    """A fresh connection (own temporary views and tables) to the process's in-memory DuckDB."""
    import duckdb

    if not _DATABASE:
        spill = tempfile.mkdtemp(prefix="leadscore-duckdb-")  # 0700; removed when the process exits
        atexit.register(shutil.rmtree, spill, ignore_errors=True)
        config = {
            "threads": DUCKDB_THREADS,
            "memory_limit": DUCKDB_MEMORY_LIMIT,
            "temp_directory": spill,
            "preserve_insertion_order": False,
        }
        _DATABASE.append(duckdb.connect(config=config))
    con = _DATABASE[0].cursor()
    try:
        yield con
    finally:
        con.close()


def stored_parts(store: ExtractStore, query: QuerySpec, cut: pd.Timestamp | None) -> list[tuple[str, bool]]:
    """(path, filter by first_seen) of each interval of ``query`` that ``read_all`` reads at ``cut``, in its order."""
    parts = []
    for start, end in store.intervals(query):
        path = store.path(query, start, end)
        has_seen = FIRST_SEEN in pq.read_schema(path).names
        if cut is not None and end > cut and not has_seen:
            continue  # written before first_seen existed: known from its end
        parts.append((str(path), cut is not None and has_seen))
    return parts


def quote(text: str) -> str:
    """``text`` as a SQL string literal."""
    return "'" + text.replace("'", "''") + "'"


def _part_sql(i: int, source: str, seen_filter: str | None, extra: str = "") -> str:
    where = f" WHERE {FIRST_SEEN} <= {seen_filter}" if seen_filter else ""
    return f"SELECT {i} AS part, {extra}person_guid, kind, detail, occurred FROM {source}{where}"


def _overlaps(ranges: dict[int, tuple[Any, Any]]) -> dict[int, list[tuple[Any, Any]]]:
    """Per part, the time ranges it shares with another part (where ``_union_interactions`` looks for repeats)."""
    out: dict[int, list[tuple[Any, Any]]] = {}
    keys = sorted(k for k, (lo, hi) in ranges.items() if lo is not None and hi is not None)  # None: no row
    for a, i in enumerate(keys):
        for j in keys[a + 1 :]:
            lo, hi = max(ranges[i][0], ranges[j][0]), min(ranges[i][1], ranges[j][1])
            if lo > hi:
                continue
            for k in (i, j):
                out.setdefault(k, []).append((lo, hi))
    return out


def _store_view(con: duckdb.DuckDBPyConnection, source: StoredInteractions) -> str | None:
    """Create the view ``ev`` (part, person_guid, kind, detail, occurred) of the store's rows; returns None when empty."""
    cut = source.as_of
    parts = stored_parts(source.store, INTERACTIONS, cut)
    if not parts:
        return None
    stamp = None if cut is None else f"TIMESTAMP {quote(cut.isoformat(sep=' '))}"
    scans = [
        f"read_parquet({quote(path)}, file_row_number = true)" for path, _ in parts
    ]  # the row number orders repeats within a part, as pandas' keep="last" does
    seen = [stamp if filt else None for _, filt in parts]
    if len(parts) == 1:
        con.execute(f"CREATE TEMP VIEW ev AS {_part_sql(0, scans[0], seen[0])}")
        return "ev"
    ranges_sql = " UNION ALL ".join(
        f"SELECT {i} AS part, min(occurred), max(occurred) FROM {scans[i]}"
        + (f" WHERE {FIRST_SEEN} <= {seen[i]}" if seen[i] else "")
        for i in range(len(parts))
    )
    ranges = {int(p): (lo, hi) for p, lo, hi in con.execute(ranges_sql).fetchall()}
    shared = _overlaps(ranges)
    selects = []
    for i in range(len(parts)):
        spans = " OR ".join(f"occurred BETWEEN {_ts(lo)} AND {_ts(hi)}" for lo, hi in shared.get(i, []))
        flag = f"({spans})" if spans else "false"
        extra = f"file_row_number AS frn, interaction_guid, {flag} AS cand, "
        selects.append(_part_sql(i, scans[i], seen[i], extra))
    con.execute(f"CREATE TEMP VIEW allparts AS {' UNION ALL '.join(selects)}")
    if not shared:
        con.execute("CREATE TEMP VIEW ev AS SELECT part, person_guid, kind, detail, occurred FROM allparts")
        return "ev"
    # Among the rows of shared time ranges, the last copy of each interaction_guid (later part, later row) wins.
    con.execute(
        "CREATE TEMP TABLE losers AS SELECT part, frn FROM (SELECT part, frn, row_number() OVER "
        "(PARTITION BY interaction_guid ORDER BY part DESC, frn DESC) AS rn FROM allparts WHERE cand) WHERE rn > 1"
    )
    con.execute(
        "CREATE TEMP VIEW ev AS SELECT a.part, a.person_guid, a.kind, a.detail, a.occurred FROM allparts a "
        "ANTI JOIN losers l ON a.part = l.part AND a.frn = l.frn"
    )
    return "ev"


def _ts(value: Any) -> str:
    return f"TIMESTAMP {quote(pd.Timestamp(value).isoformat(sep=' '))}"


def _frame_view(con: duckdb.DuckDBPyConnection, frame: pd.DataFrame) -> str:
    missing = [c for c in _COLUMNS if c not in frame.columns]
    if missing:
        raise EventReadError(f"interactions lacks column(s) {missing}; it has {list(frame.columns)}")
    occurred = frame["occurred"]
    if isinstance(occurred.dtype, pd.DatetimeTZDtype):
        occurred = occurred.dt.tz_convert("UTC").dt.tz_localize(None)
    if not pd.api.types.is_datetime64_dtype(occurred.dtype):
        raise EventReadError(f"interactions.occurred must be datetime64 (see data.tables), got {occurred.dtype}")
    table = pa.table(
        {
            "part": pa.array(np.zeros(len(frame), dtype=np.int32)),
            **{c: _strings(frame[c]) for c in ("person_guid", "kind", "detail")},
            "occurred": pa.array(occurred.to_numpy(dtype="datetime64[us]"), mask=occurred.isna().to_numpy()),
        }
    )
    con.register("ev_frame", table)
    return "ev_frame"


def _strings(values: pd.Series) -> pa.Array:
    arr = pa.array(values, from_pandas=True)
    return arr if pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type) else arr.cast(pa.large_string())


def read_events(
    interactions: pd.DataFrame | StoredInteractions,
    persons: pd.Series,
    detail_kinds: tuple[str, ...],
    wanted: np.ndarray | None = None,
) -> EventArrays:
    """The interactions of ``persons`` as numeric arrays (see :class:`EventArrays`).

    Args:
        interactions: a cleaned interactions frame (data.tables.INTERACTION_COLUMNS; read as it is) or a
            :class:`StoredInteractions` (read as ``ExtractStore.read_all`` would, see the module doc).
        persons: the GUIDs whose interactions are wanted; a row's ``code`` is its GUID's position here (GUIDs are
            matched exactly; missing values match nothing). Must be unique.
        detail_kinds: kinds whose ``detail`` tells events apart (pairs keep it); for other kinds detail is dropped.
        wanted: which of ``persons`` to read (bool mask aligned with it); None: all.
    Returns:
        The event arrays; empty arrays when nothing is stored.
    Raises:
        EventReadError: a required column is missing, ``occurred`` is not a timestamp, or a wanted row has none.
    """
    guids = _strings(persons.reset_index(drop=True))
    with connection() as con:
        if isinstance(interactions, StoredInteractions):
            view = _store_view(con, interactions)
            dead = interactions.store.dead_persons(interactions.as_of)
        else:
            view, dead = _frame_view(con, interactions), pd.Index([])
        if view is None:
            none = np.array([], dtype=object)
            return EventArrays(np.zeros(0, np.int32), np.zeros(0, np.int64), np.zeros(0, np.int32), none, none)
        codes = np.arange(len(guids), dtype=np.int64)
        alive = np.ones(len(guids), dtype=bool) if wanted is None else np.asarray(wanted, dtype=bool).copy()
        if len(dead):
            alive &= ~pd.Series(guids.to_pandas()).isin(dead).to_numpy()
        con.register("wanted", pa.table({"guid": guids.filter(pa.array(alive)), "code": codes[alive].astype(np.int32)}))
        kinds = ", ".join(quote(k) for k in detail_kinds) or "NULL"

        def detail(t: str = "") -> str:
            return f"CASE WHEN {t}kind IN ({kinds}) THEN {t}detail END"

        con.execute(
            f"CREATE TEMP TABLE pairs AS SELECT (row_number() OVER ()) - 1 AS pair, kind, detail FROM "
            f"(SELECT DISTINCT kind, {detail()} AS detail FROM {view})"
        )
        result = con.sql(
            f"SELECT w.code, epoch_us(e.occurred) AS occurred_us, p.pair::INTEGER AS pair FROM {view} e "
            "JOIN wanted w ON e.person_guid = w.guid "
            f"JOIN pairs p ON e.kind IS NOT DISTINCT FROM p.kind AND {detail('e.')} "
            "IS NOT DISTINCT FROM p.detail"
        ).to_arrow_table()
        pairs = con.sql("SELECT pair, kind, detail FROM pairs ORDER BY pair").to_arrow_table()
    occurred = result.column("occurred_us")
    if occurred.null_count:
        raise EventReadError(
            f"interactions.occurred has {occurred.null_count} missing timestamp(s); the cleaned tables must not"
        )
    return EventArrays(
        code=_numbers(result.column("code"), np.int32),
        occurred_us=_numbers(occurred, np.int64),
        pair=_numbers(result.column("pair"), np.int32),
        pair_kind=np.asarray(pairs.column("kind").to_pylist(), dtype=object),
        pair_detail=np.asarray(pairs.column("detail").to_pylist(), dtype=object),
    )


def _numbers(column: pa.ChunkedArray, dtype: type) -> np.ndarray:
    return np.asarray(column.to_numpy(), dtype=dtype)
