"""The sandbox's stand-in for Slate's Source Format pickup of score files dropped on SFTP.

Like Slate (BRIEF §2): every file in ``/incoming/lead_scores/`` whose name matches the import mask (default
``lead_scores_*.csv``) is taken as it is *at that moment* (so a half-uploaded file under the final name is imported
half; a ``.part`` name is not matched), parsed as a delimited file with a header row, matched to persons by GUID
(unknown GUIDs are logged, never created), logged, and moved to ``/incoming/processed/`` (overwriting a same-named
file there). The latest imported fields of each person are kept in ``slate_fields.parquet``; one JSON line per file
goes to ``import_log.jsonl``.
"""

from __future__ import annotations

import fnmatch
import json
import logging
import os
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import pandas as pd

from leadscore.sandbox.config import SFTP_IMPORT_DIR, SFTP_PROCESSED_DIR, SandboxPaths, make_private_dir

DEFAULT_MASK = "lead_scores_*.csv"
MAX_LOGGED_UNKNOWN = 100
_LOG = logging.getLogger(__name__)


@dataclass(frozen=True)
class ImportResult:
    """What one import of one file did."""

    file: str
    rows: int
    updated: int  # distinct known persons whose fields were updated
    unknown: int  # rows whose GUID matches no person
    unknown_guids: list[str] = field(default_factory=list)  # the first MAX_LOGGED_UNKNOWN of them
    errors: list[str] = field(default_factory=list)
    time: float = 0.0


class SlateImporter:
    """Source Format pickup over one sandbox's SFTP root.

    Args:
        data_dir: the sandbox directory (holds ``sftp_root/``, ``leads.parquet``, the importer's own files).
        known_guids: person GUIDs Slate knows; default: ``person_guid`` of ``leads.parquet``.
        mask: fnmatch import mask of file names (prefix, ``*``, suffix).
    """

    def __init__(self, data_dir: Path, known_guids: pd.Index | None = None, mask: str = DEFAULT_MASK) -> None:
        if " " in mask:
            raise ValueError(f"import mask {mask!r} contains a space; Slate masks have none")
        self.paths = SandboxPaths(data_dir)
        self.mask = mask
        self.import_dir = self.paths.sftp_root / SFTP_IMPORT_DIR
        self.processed_dir = self.paths.sftp_root / SFTP_PROCESSED_DIR
        if known_guids is None:
            guids = pd.read_parquet(self.paths.leads, columns=["person_guid"])["person_guid"]
            known_guids = pd.Index(guids.dropna().astype("string").str.strip().str.lower().unique())
        self.known = pd.Index(known_guids)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def poll(self) -> list[ImportResult]:
        """Import every file matching the mask, oldest name first; returns one ImportResult per file."""
        with self._lock:
            make_private_dir(self.processed_dir)
            names = sorted(
                p.name for p in self.import_dir.iterdir() if p.is_file() and fnmatch.fnmatchcase(p.name, self.mask)
            )
            return [self._import(self.import_dir / name) for name in names]

    def _import(self, path: Path) -> ImportResult:
        errors: list[str] = []
        frame = pd.DataFrame()
        try:
            frame = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8")
        except (ValueError, UnicodeDecodeError, pd.errors.ParserError) as exc:
            errors.append(f"unreadable file: {exc}")
        if not errors and "person_guid" not in frame.columns:
            errors.append(f"no person_guid column; header: {list(frame.columns)}")
        rows, updated, unknown_guids = len(frame), 0, []
        if not errors:
            guids = frame["person_guid"].astype("string").str.strip().str.lower()
            blank = guids == ""
            if blank.any():
                errors.append(f"{int(blank.sum())} rows without person_guid")
            is_known = guids.isin(self.known) & ~blank
            unknown_guids = guids[~is_known & ~blank].tolist()
            known_rows = frame[is_known.to_numpy()].assign(person_guid=guids[is_known].to_numpy())
            updated = int(known_rows["person_guid"].nunique())
            if updated:
                self._store(known_rows, path.name)
        result = ImportResult(
            file=path.name,
            rows=rows,
            updated=updated,
            unknown=len(unknown_guids),
            unknown_guids=unknown_guids[:MAX_LOGGED_UNKNOWN],
            errors=errors,
            time=time.time(),
        )
        os.replace(path, self.processed_dir / path.name)
        self._log(result)
        return result

    def _store(self, rows: pd.DataFrame, file_name: str) -> None:
        rows = rows.assign(_source_file=file_name, _imported_at=pd.Timestamp.now(tz="UTC").tz_localize(None))
        current = self.fields()
        merged = pd.concat([current, rows], ignore_index=True) if len(current) else rows
        merged = merged.drop_duplicates("person_guid", keep="last").reset_index(drop=True)
        tmp = self.paths.slate_fields.with_name(".slate_fields.tmp.parquet")
        merged.to_parquet(tmp, index=False)
        os.chmod(tmp, 0o600)
        os.replace(tmp, self.paths.slate_fields)

    def _log(self, result: ImportResult) -> None:
        fd = os.open(self.paths.import_log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        with os.fdopen(fd, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(asdict(result)) + "\n")

    def fields(self) -> pd.DataFrame:
        """The latest imported fields per known person (empty frame before any import)."""
        if not self.paths.slate_fields.exists():
            return pd.DataFrame()
        return pd.read_parquet(self.paths.slate_fields)

    def log(self) -> list[dict]:
        """Every import log line so far, oldest first."""
        if not self.paths.import_log.exists():
            return []
        return [json.loads(line) for line in self.paths.import_log.read_text().splitlines() if line.strip()]

    def reset(self) -> None:
        """Forget imported fields and the import log (tests)."""
        with self._lock:
            for p in (self.paths.slate_fields, self.paths.import_log):
                p.unlink(missing_ok=True)

    def start(self, interval_s: float) -> SlateImporter:
        """Poll every ``interval_s`` seconds in a daemon thread until ``stop``; returns self."""
        if interval_s <= 0:
            raise ValueError(f"importer interval must be positive, got {interval_s}")
        self._stop.clear()

        def loop() -> None:
            while not self._stop.wait(interval_s):
                try:
                    self.poll()
                except OSError:  # keep polling like Slate's scheduler; the failure is logged, not swallowed
                    _LOG.exception("sandbox importer poll failed")

        self._thread = threading.Thread(target=loop, name="slate-importer", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop background polling (no-op when not started)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None
