"""The leads table as known at a date, read with DuckDB from the store's Parquet extracts: ``read_all(LEADS)`` lean.

``ExtractStore.read_all(LEADS, as_of=...)`` concatenates every interval in pandas and sorts a million GUID strings to
keep each person's latest version; the weekly run only needs that result. Here one DuckDB query does the same:
rows first seen by the cut (files without ``first_seen`` count as known from their interval's end), per person the
greatest ``updated`` (a missing one is the least; a tie goes to the later interval, then the later row, as
``data.clean.latest_leads``), persons found merged away or deleted left out, sorted by person_guid, in the contract.
"""

from __future__ import annotations

from typing import Any

import pandas as pd
import pyarrow as pa

from leadscore.data.contracts import CONTRACTS, FIRST_SEEN, empty_frame, to_utc_naive
from leadscore.data.events import connection, quote, stored_parts
from leadscore.data.store import ExtractStore
from leadscore.slate.queries import LEADS


def read_leads(store: ExtractStore, as_of: Any = None) -> pd.DataFrame:
    """The cleaned leads table as known at ``as_of`` (None: every stored row): equal to ``store.read_all(LEADS,
    as_of=as_of)``.

    Args:
        store: the extract store. as_of: the cut (tz-aware values converted to UTC).
    Returns:
        One row per person in data.tables.LEAD_COLUMNS (order and dtypes), sorted by person_guid; empty in the
        contract when nothing is stored.
    """
    cut = None if as_of is None else to_utc_naive(as_of)
    parts = stored_parts(store, LEADS, cut)
    if not parts:
        return empty_frame(LEADS.name)
    columns = ", ".join(CONTRACTS[LEADS.name])
    stamp = None if cut is None else f"TIMESTAMP {quote(cut.isoformat(sep=' '))}"
    selects = [
        f"SELECT {i} AS part, file_row_number AS frn, {columns} FROM read_parquet({quote(path)}, file_row_number = true)"
        + (f" WHERE {FIRST_SEEN} <= {stamp}" if filt else "")
        for i, (path, filt) in enumerate(parts)
    ]
    dead = store.dead_persons(cut)
    with connection() as con:
        con.register("dead", pa.table({"guid": pa.array(list(dead), type=pa.string())}))
        table = con.sql(
            f"SELECT {columns} FROM ({' UNION ALL '.join(selects)}) "
            "WHERE person_guid NOT IN (SELECT guid FROM dead) "
            "QUALIFY row_number() OVER (PARTITION BY person_guid ORDER BY updated DESC NULLS LAST, part DESC, "
            "frn DESC) = 1 ORDER BY person_guid"
        ).to_arrow_table()
    contract = CONTRACTS[LEADS.name]
    frame = table.to_pandas().astype(contract)
    if not frame["person_guid"].is_monotonic_increasing:  # DuckDB orders bytes; pandas code points: the same for UTF-8
        frame = frame.sort_values("person_guid", kind="stable")
    return frame.reset_index(drop=True)
