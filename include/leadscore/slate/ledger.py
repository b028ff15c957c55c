"""The local delivery ledger: which score file, with which content, reached Slate's SFTP and when.

One JSON line per delivered chunk in ``<home>/ledger/deliveries.jsonl`` (append-only, human-readable, easy to grep).
Slate moves a picked-up file to ``/incoming/processed/`` and may delete it after 30 days, so the remote folder cannot
tell what was delivered; the ledger can. A chunk counts as delivered when the ledger's latest line for its name carries
the same SHA-256.

A per-date lock file (``fcntl.flock``) makes two runs of the same week on one host wait for each other instead of both
delivering. Workers on several hosts share :mod:`leadscore.slate.ledger_db` instead (``LEADSCORE_LEDGER_CONN_ID``).
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Protocol

from leadscore import faults

LEDGER_NAME = "deliveries.jsonl"
_LOG = logging.getLogger(__name__)


class LedgerLockTimeout(RuntimeError):
    """Another delivery of the same scoring date held the lock longer than the timeout."""


@dataclass(frozen=True)
class LedgerEntry:
    """One delivered chunk.

    Attributes:
        scored_on: ISO scoring date.
        file: chunk file name.
        sha256: hex SHA-256 of the delivered bytes.
        rows: data rows in the chunk.
        bytes: size in bytes.
        remote_path: where it was renamed to on the SFTP server.
        delivered_at: ISO UTC time of the verified rename.
        attempt: which attempt (1-based) succeeded.
    """

    scored_on: str
    file: str
    sha256: str
    rows: int
    bytes: int
    remote_path: str
    delivered_at: str
    attempt: int


class Ledger(Protocol):
    """What delivery needs of a ledger: this module's files, or the shared database (``ledger_db``)."""

    def entries(self, scored_on: str | None = None) -> list[LedgerEntry]: ...

    def latest(self) -> dict[str, LedgerEntry]: ...

    def already_delivered(self, file: str, sha256: str) -> bool: ...

    def record(self, entry: LedgerEntry) -> None: ...

    def lock(self, scored_on: str, timeout: float = 300.0, poll: float = 0.2) -> AbstractContextManager[None]: ...


class LedgerReads:
    """The reads every ledger derives from its ``entries`` (the local files and the shared database alike)."""

    def entries(self, scored_on: str | None = None) -> list[LedgerEntry]:
        raise NotImplementedError

    def latest(self) -> dict[str, LedgerEntry]:
        """The latest entry per file name."""
        return {e.file: e for e in self.entries()}

    def already_delivered(self, file: str, sha256: str) -> bool:
        """True when the latest delivery of ``file`` carried content with this SHA-256."""
        entry = self.latest().get(file)
        return entry is not None and entry.sha256 == sha256


class DeliveryLedger(LedgerReads):
    """The ledger in one directory (normally ``Settings.home_abs / "ledger"``)."""

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)
        self.path = self.directory / LEDGER_NAME

    def entries(self, scored_on: str | None = None) -> list[LedgerEntry]:
        """Every recorded delivery, oldest first, optionally of one ISO scoring date only.

        Raises:
            ValueError: a line is not a ledger entry (the message names the line number).
        """
        if not self.path.exists():
            return []
        out: list[LedgerEntry] = []
        with self.path.open(encoding="utf-8") as fh:
            for number, line in enumerate(fh, start=1):
                if not line.strip():
                    continue
                try:
                    entry = LedgerEntry(**json.loads(line))
                except (TypeError, ValueError) as exc:
                    raise ValueError(f"{self.path} line {number} is not a ledger entry: {exc}") from exc
                if scored_on is None or entry.scored_on == scored_on:
                    out.append(entry)
        return out

    def record(self, entry: LedgerEntry) -> None:
        """Append one entry durably (flushed and fsynced before returning)."""
        self.directory.mkdir(parents=True, exist_ok=True)
        line = json.dumps(asdict(entry), sort_keys=True) + "\n"
        with self.path.open("a", encoding="utf-8") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                fh.write(line)
                fh.flush()
                os.fsync(fh.fileno())
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    @contextmanager
    def lock(self, scored_on: str, timeout: float = 300.0, poll: float = 0.2) -> Iterator[None]:
        """Hold the delivery lock of one scoring date.

        Args:
            scored_on: ISO scoring date.
            timeout: seconds to wait for another holder before giving up.
            poll: seconds between attempts.
        Raises:
            LedgerLockTimeout: the lock was not free within ``timeout``.
        """
        self.directory.mkdir(parents=True, exist_ok=True)
        path = self.directory / f"deliver_{scored_on}.lock"
        fh = path.open("a+")
        deadline = time.monotonic() + timeout
        waited = False
        try:
            while True:
                try:
                    fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if not waited:
                        waited = True
                        _LOG.info(
                            "another run holds the lock of %s (%s); waiting up to %.0f s", scored_on, path, timeout
                        )
                        faults.point("lock.waiting")
                    if time.monotonic() >= deadline:
                        raise LedgerLockTimeout(
                            f"another delivery of the scores of {scored_on} still holds {path} after {timeout:.0f} s; "
                            "wait for it to finish (see the other run's log) and re-run: the re-run sends only what "
                            "is missing"
                        ) from None
                    time.sleep(poll)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)
        finally:
            fh.close()
