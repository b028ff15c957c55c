"""One extract written in pieces into a temp file beside its target (the store moves it into place)."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import IO, Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from leadscore.data.contracts import FIRST_SEEN, contract_table, empty_frame, spec_of
from leadscore.files import FILE_MODE, remove_dead_temps
from leadscore.files import private_dir as make_private_dir
from leadscore.slate.queries import QuerySpec


def parquet_bytes_writer(table: pa.Table) -> Callable[[IO[bytes]], None]:
    def write(fh: IO[bytes]) -> None:
        pq.write_table(table, fh, compression="zstd", use_dictionary=True, write_statistics=True)

    return write


# pyarrow's default row-group length (ParquetWriter.write_table with row_group_size=None, as write_table uses it).
PARQUET_ROW_GROUP_ROWS = 1024 * 1024


class StagedParquet:
    """One extract written in pieces into a temp file beside its target, giving the bytes ``write`` would give.

    Rows are appended as Arrow tables already in the stored layout (the contract plus ``first_seen``) and in the key
    order; they are cut into row groups of PARQUET_ROW_GROUP_ROWS, each written as one contiguous chunk, which is how
    ``pq.write_table`` lays out the whole table. :meth:`finish` returns ``(temp, target)`` for
    :meth:`ExtractStore.write_many`; :meth:`abort` removes the temp file. Memory: at most one row group buffered.

    Args:
        target: the extract's final path (its folder is created 0700). query: the query (or name), for the schema.
    """

    def __init__(self, target: Path, query: QuerySpec | str) -> None:
        self.target = Path(target)
        self.spec = spec_of(query)
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
                empty = empty_frame(self.spec.name).assign(**{FIRST_SEEN: pd.Series([], dtype="datetime64[us]")})
                parquet_bytes_writer(contract_table(self.spec, empty, stored=True))(self._fh)
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


def csv_writer(frame: pd.DataFrame) -> Callable[[IO[bytes]], None]:
    """A writer of ``frame`` as UTF-8 CSV with a header and ``\\n`` line ends (quarantine files)."""
    data = frame.to_csv(index=False, lineterminator="\n").encode("utf-8")
    return lambda fh: fh.write(data)


def json_writer(summary: Mapping[str, Any]) -> Callable[[IO[bytes]], None]:
    """A writer of ``summary`` as sorted, indented JSON (data-quality summaries)."""
    data = (json.dumps(summary, indent=2, sort_keys=True, default=str) + "\n").encode("utf-8")
    return lambda fh: fh.write(data)
