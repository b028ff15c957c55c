"""The week-over-week monitoring history: one row per monitoring date in ``<reports_dir>/history.parquet``.

Re-running a week replaces that week's row, so backfills and retries are idempotent. The file is rewritten
atomically (temporary file + rename).
"""

from __future__ import annotations

import io
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from leadscore.files import atomic_write_bytes

HISTORY_NAME = "history.parquet"
KEY = "scored_on"


def history_path(reports_dir: Path) -> Path:
    """Where the history lives under ``reports_dir``."""
    return Path(reports_dir) / HISTORY_NAME


def read_history(path: Path) -> pd.DataFrame:
    """The history sorted by ``scored_on`` (ISO date strings); an empty frame with only the key when absent."""
    path = Path(path)
    if not path.exists():
        return pd.DataFrame({KEY: pd.Series([], dtype="string")})
    frame = pd.read_parquet(path)
    if KEY not in frame.columns:
        raise ValueError(f"{path} has no {KEY!r} column; it is not a monitoring history (move it away)")
    frame[KEY] = frame[KEY].astype("string")
    return frame.sort_values(KEY, kind="stable").reset_index(drop=True)


def _cell(value: Any) -> Any:
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, np.generic):
        return value.item()
    return value


def upsert_history(path: Path, row: dict[str, Any]) -> pd.DataFrame:
    """Insert or replace the row of ``row["scored_on"]`` and write the history back.

    Args:
        path: the history file.
        row: flat scalars (numbers, strings, None); ``scored_on`` a date or ISO string.
    Returns:
        The whole updated history, sorted by ``scored_on``.
    Raises:
        ValueError: ``row`` has no ``scored_on``.
    """
    if KEY not in row:
        raise ValueError(f"a history row needs {KEY!r}; got keys {sorted(row)}")
    clean = {k: _cell(v) for k, v in row.items()}
    old = read_history(path)
    old = old[old[KEY] != clean[KEY]]
    new = pd.DataFrame([clean])
    both = new if old.empty else pd.concat([old, new], ignore_index=True)
    both[KEY] = both[KEY].astype("string")
    both = both.sort_values(KEY, kind="stable").reset_index(drop=True)
    buf = io.BytesIO()
    both.to_parquet(buf, index=False)
    atomic_write_bytes(Path(path), buf.getvalue())
    return both


def up_to(history: pd.DataFrame, scored_on: date) -> pd.DataFrame:
    """The rows at or before ``scored_on`` (a backfilled week's report shows no later weeks)."""
    return history[history[KEY] <= scored_on.isoformat()].reset_index(drop=True)
