"""Push one scoring date's score files to Slate's SFTP through Airflow's ``SFTPHook`` (connection ``slate_sftp``).

Protocol per chunk (BRIEF §6): remove a stale ``<name>.part``, upload as ``<name>.part`` (Slate's mask
``lead_scores_*.csv`` cannot match it), check its remote size, rename to ``<name>`` (``posix-rename@openssh.com``,
which replaces an existing file atomically; on servers without it: remove the old file, then rename), check the size
again, and record the chunk in the ledger (local files, or the shared database of ``LEADSCORE_LEDGER_CONN_ID``). A
failed chunk is retried ``Settings.delivery_retries`` times in all, with exponential backoff and a fresh connection
each time. All chunks share one managed connection otherwise.

What counts as delivered: the ledger, not the remote folder, because Slate moves picked-up files to
``/incoming/processed/`` and deletes them after 30 days. A re-run of a week sends only chunks whose name and SHA-256
are not in the ledger. One window is left: a run killed after a rename and before its ledger line. So before sending
a chunk the ledger lacks, the final name in the folder and in the ``processed`` folder beside it are checked: a file
there with the chunk's size and SHA-256 (read back) is the same chunk, already delivered (and maybe imported), and
is recorded without being sent again (``DeliveryReport.recovered``); re-sending it would make Slate import it twice.

Hung servers: every step (TCP connect, banner, key exchange, login, opening the SFTP session, each read or write)
waits at most ``Settings.sftp_timeout`` seconds; opening the SFTP session is bounded by a watchdog that closes the
connection (paramiko's subsystem request itself has no timeout). A server that accepts and then stalls ends in a
``DeliveryTimeout`` (retried like any connection failure), never in a hung task. Before uploading, files of the same date in the remote folder that are ``.part`` leftovers or
chunks this manifest no longer has (an earlier run with more parts) are removed, so Slate never imports two versions.

Host keys: the connection must pin the server's key in its extra ``host_key`` and must not set ``no_host_key_check``
or ``allow_host_key_change``; a server presenting another key fails at once, before any upload, with no retry.
"""

from __future__ import annotations

import hashlib
import logging
import posixpath
import stat
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from leadscore import faults
from leadscore.scoring.files import Manifest, ScoreFile, date_key, parse_chunk_name
from leadscore.settings import Settings

# Re-exported: callers catch delivery's errors from here.
from leadscore.slate.delivery_errors import (  # noqa: F401
    ChunkDeliveryError,
    DeliveryAuthError,
    DeliveryConfigError,
    DeliveryError,
    DeliveryTimeout,
    HostKeyError,
    LocalFileError,
)
from leadscore.slate.ledger import DeliveryLedger, Ledger, LedgerEntry
from leadscore.slate.sftp_session import _Session

_LOG = logging.getLogger(__name__)
CONN_ID = "slate_sftp"
MAX_BACKOFF_S = 60.0


class _VerifyError(OSError):
    """A remote size check failed (retryable)."""


@dataclass(frozen=True)
class DeliveryReport:
    """What one delivery did.

    Attributes:
        scored_on: ISO scoring date.
        sent: chunks uploaded and renamed in this run (in dry run: chunks that would be sent).
        skipped: chunks the ledger already records with the same SHA-256.
        bytes: bytes sent (in dry run: that would be sent).
        attempts: upload attempts made (0 in dry run); more than ``sent`` means retries happened.
        dry_run: nothing was uploaded.
        files_sent: names of the sent (or would-be-sent) chunks.
        removed: remote leftovers removed (stale ``.part`` files, chunks of an earlier run of the same date).
        recovered: chunks the ledger lacked but found already on the server (final or processed name, same
            SHA-256): an earlier run was killed after their rename; recorded now, not sent again.
    """

    scored_on: str
    sent: int
    skipped: int
    bytes: int
    attempts: int
    dry_run: bool = False
    files_sent: tuple[str, ...] = ()
    removed: tuple[str, ...] = field(default_factory=tuple)
    recovered: tuple[str, ...] = ()


def ledger_for(settings: Settings) -> Ledger:
    """The delivery ledger: files under ``<home>/ledger``, or the shared database of ``settings.ledger_conn_id``.

    Raises:
        LedgerConfigError: the configured connection is missing or not PostgreSQL.
    """
    if not settings.ledger_conn_id:
        return DeliveryLedger(settings.home_abs / "ledger")
    from leadscore.slate.ledger_db import DatabaseLedger, ledger_url_from_airflow

    return DatabaseLedger(ledger_url_from_airflow(settings.ledger_conn_id), name=settings.ledger_conn_id)


def verify_local_files(manifest: Manifest) -> None:
    """Check that every chunk of the manifest exists locally with its recorded size and SHA-256.

    Raises:
        LocalFileError: naming the chunk and telling to re-run the scoring step.
    """
    for f in manifest.files:
        path = manifest.path(f.name)
        if not path.is_file():
            raise LocalFileError(f"score file {path} listed in the manifest is missing; re-run the scoring step")
        digest = hashlib.sha256()
        with path.open("rb") as fh:
            for block in iter(lambda fh=fh: fh.read(1 << 20), b""):
                digest.update(block)
        size = path.stat().st_size
        if size != f.bytes or digest.hexdigest() != f.sha256:
            raise LocalFileError(
                f"score file {path} no longer matches its manifest (size {size} vs {f.bytes}, or SHA-256 differs); "
                "re-run the scoring step to rewrite the files"
            )


def _remote_size(sftp: Any, path: str) -> int | None:
    try:
        return int(sftp.stat(path).st_size)
    except FileNotFoundError:
        return None


def _remove_if_present(sftp: Any, path: str) -> bool:
    try:
        sftp.remove(path)
        return True
    except FileNotFoundError:
        return False


def _rename_replacing(sftp: Any, source: str, target: str) -> None:
    """Rename replacing ``target``: posix-rename when the server has it, else remove then rename."""
    try:
        sftp.posix_rename(source, target)
        return
    except OSError as exc:
        if "unsupported" not in str(exc).lower():
            raise
        _LOG.info("server lacks posix-rename; removing %s before renaming", target)
    _remove_if_present(sftp, target)
    sftp.rename(source, target)


def _check_size(sftp: Any, path: str, expected: int) -> None:
    size = _remote_size(sftp, path)
    if size != expected:
        raise _VerifyError(f"remote {path} holds {size} bytes, expected {expected}")


def _clean_remote(sftp: Any, remote_dir: str, manifest: Manifest) -> list[str]:
    """Remove this date's ``.part`` leftovers and chunks that the manifest no longer lists."""
    key = date_key(manifest.scored_on_date)
    wanted = {f.name for f in manifest.files}
    removed = []
    for attrs in sftp.listdir_attr(remote_dir):
        name = attrs.filename
        if not stat.S_ISREG(attrs.st_mode or 0):
            continue
        base = name[: -len(".part")] if name.endswith(".part") else name
        parsed = parse_chunk_name(base)
        if parsed is None or parsed[0] != key:
            continue
        if name.endswith(".part") or name not in wanted:
            sftp.remove(posixpath.join(remote_dir, name))
            removed.append(name)
    if removed:
        _LOG.info("removed remote leftovers of %s: %s", manifest.scored_on, removed)
    return removed


def processed_dir(remote_dir: str) -> str:
    """Where Slate moves a picked-up file: ``processed`` beside the watched folder (``/incoming/processed``)."""
    return posixpath.join(posixpath.dirname(remote_dir.rstrip("/")) or "/", "processed")


def _remote_sha256(sftp: Any, path: str) -> str:
    digest = hashlib.sha256()
    with sftp.open(path, "rb") as fh:
        fh.prefetch()
        for block in iter(lambda: fh.read(1 << 16), b""):
            digest.update(block)
    return digest.hexdigest()


def _already_delivered(sftp: Any, remote_dir: str, chunk: ScoreFile) -> str | None:
    """The remote path holding this very chunk (final name, or Slate's processed copy), else None.

    Same size first (a stat), then the same SHA-256 (read back): a re-scored week with other content is sent.
    """
    for path in (posixpath.join(remote_dir, chunk.name), posixpath.join(processed_dir(remote_dir), chunk.name)):
        try:
            if _remote_size(sftp, path) == chunk.bytes and _remote_sha256(sftp, path) == chunk.sha256:
                return path
        except (FileNotFoundError, PermissionError):  # a processed folder we may not read counts as absent
            continue
    return None


def _send_chunk(sftp: Any, local: Path, remote_dir: str, chunk: ScoreFile, state: dict[str, bool]) -> str:
    """Upload, verify and rename one chunk; returns its remote path. ``state`` survives between attempts.

    ``state["recovered"]`` is set when the chunk was already on the server (see :func:`_already_delivered`).
    """
    final = posixpath.join(remote_dir, chunk.name)
    part = final + ".part"
    if not state.get("checked"):
        state["checked"] = True
        found = _already_delivered(sftp, remote_dir, chunk)
        if found is not None:
            _LOG.warning(
                "chunk %s is already on the server (%s, same SHA-256) but not in the ledger: an earlier delivery "
                "stopped after its rename. Recording it without sending it again (Slate would import it twice)",
                chunk.name,
                found,
            )
            state["recovered"] = True
            return found
    if state.get("rename_issued"):
        # The previous attempt lost the connection around the rename. The server renames atomically, so a vanished
        # .part means the rename happened (and the importer may already have moved the file away): re-sending it
        # would make Slate import it twice.
        part_size = _remote_size(sftp, part)
        if part_size is None:
            if _remote_size(sftp, final) in (None, chunk.bytes):
                return final
        elif part_size == chunk.bytes:
            _rename_replacing(sftp, part, final)
            _check_size(sftp, final, chunk.bytes)
            return final
    state["rename_issued"] = False
    _remove_if_present(sftp, part)
    sftp.put(str(local), part, confirm=False)
    _check_size(sftp, part, chunk.bytes)
    faults.point("deliver.after_upload")
    state["rename_issued"] = True
    _rename_replacing(sftp, part, final)
    _check_size(sftp, final, chunk.bytes)
    return final


def _discard_part(session: _Session, part: str) -> None:
    """Remove a failed chunk's ``.part`` when the connection still works (the next run removes it otherwise)."""
    try:
        if session.sftp is None:
            session.open()
        _remove_if_present(session.sftp, part)
    except Exception as exc:
        _LOG.warning("could not remove %s after the failed delivery (%s); the next delivery removes it", part, exc)


def _retryable(exc: BaseException) -> bool:
    import paramiko

    if isinstance(exc, (HostKeyError, DeliveryAuthError, DeliveryConfigError, PermissionError)):
        return False
    return isinstance(exc, (OSError, EOFError, paramiko.SSHException))


def deliver(
    manifest: Manifest,
    settings: Settings,
    conn_id: str = CONN_ID,
    dry_run: bool = False,
    *,
    backoff_seconds: float = 2.0,
    lock_timeout: float = 600.0,
) -> DeliveryReport:
    """Deliver a scoring date's chunks to ``settings.remote_dir`` on the ``conn_id`` SFTP server.

    Args:
        manifest: the manifest of the files to deliver (``write_score_files``).
        settings: uses ``remote_dir``, ``delivery_retries``, ``home`` and ``ledger_conn_id`` (the ledger).
        conn_id: the Airflow connection of Slate's SFTP.
        dry_run: report what would be sent without connecting or uploading.
        backoff_seconds: the first retry waits this long, each later one twice as long (capped at 60 s).
        lock_timeout: seconds to wait for another delivery of the same date.
    Returns:
        A :class:`DeliveryReport`.
    Raises:
        LocalFileError: a local chunk is missing or changed since the manifest was written.
        DeliveryConfigError: the connection does not pin a host key, or the remote folder does not exist.
        HostKeyError: the server's key differs from the pinned one (raised at once, nothing uploaded).
        DeliveryAuthError: the server refused the credentials.
        ChunkDeliveryError: a chunk failed ``settings.delivery_retries`` times; chunks delivered before it stay
            recorded, so a re-run sends only the rest.
        LedgerLockTimeout: another delivery of the same date kept the lock past ``lock_timeout``.
        LedgerConfigError, LedgerUnavailableError: the shared ledger's connection is unusable or its database down.
    """
    ledger = ledger_for(settings)
    remote_dir = settings.remote_dir.rstrip("/") or "/"

    def pending() -> list[ScoreFile]:
        latest = ledger.latest()
        return [f for f in manifest.files if not (f.name in latest and latest[f.name].sha256 == f.sha256)]

    if dry_run:
        verify_local_files(manifest)
        todo = pending()
        return DeliveryReport(
            scored_on=manifest.scored_on,
            sent=len(todo),
            skipped=len(manifest.files) - len(todo),
            bytes=sum(f.bytes for f in todo),
            attempts=0,
            dry_run=True,
            files_sent=tuple(f.name for f in todo),
        )

    with ledger.lock(manifest.scored_on, timeout=lock_timeout):
        # Under the lock: a re-scoring of this week (which takes the same lock) cannot change the files mid-delivery.
        verify_local_files(manifest)
        todo = pending()  # re-read under the lock: a run that held it may just have delivered
        skipped = len(manifest.files) - len(todo)
        if not todo:
            _LOG.info("all %d chunks of %s already delivered; nothing to send", skipped, manifest.scored_on)
            return DeliveryReport(scored_on=manifest.scored_on, sent=0, skipped=skipped, bytes=0, attempts=0)
        session = _Session(conn_id, settings.sftp_timeout)
        attempts, sent_bytes, sent, removed, recovered = 0, 0, [], [], []
        try:
            sftp = _open_with_retries(session, settings, backoff_seconds)
            try:
                if not stat.S_ISDIR(sftp.stat(remote_dir).st_mode or 0):
                    raise DeliveryConfigError(f"remote path {remote_dir} is not a folder")
            except FileNotFoundError as exc:
                raise DeliveryConfigError(
                    f"remote folder {remote_dir} does not exist on the SFTP server; create it (it must be the folder "
                    "Slate's Source Format watches) or set LEADSCORE_REMOTE_DIR"
                ) from exc
            removed = _clean_remote(sftp, remote_dir, manifest)
            for chunk in todo:
                state: dict[str, bool] = {}  # survives this chunk's attempts
                for attempt in range(1, settings.delivery_retries + 1):
                    attempts += 1
                    try:
                        if session.sftp is None:
                            session.open()
                        remote_path = _send_chunk(session.sftp, manifest.path(chunk.name), remote_dir, chunk, state)
                        break
                    except Exception as exc:
                        if isinstance(exc, PermissionError):
                            raise ChunkDeliveryError(
                                f"the SFTP server denied writing chunk {chunk.name} to {remote_dir} ({exc}); check "
                                f"that the user of connection {conn_id!r} may write and rename files there"
                            ) from exc
                        if not _retryable(exc):
                            raise
                        if attempt == settings.delivery_retries:
                            _discard_part(session, posixpath.join(remote_dir, chunk.name + ".part"))
                            raise ChunkDeliveryError(
                                f"chunk {chunk.name} of {manifest.scored_on} failed {attempt} times, last with "
                                f"{type(exc).__name__}: {exc}; {len(sent)} chunks sent in this run are recorded in "
                                f"the ledger, so re-running the delivery sends only the rest"
                            ) from exc
                        wait = min(backoff_seconds * 2 ** (attempt - 1), MAX_BACKOFF_S)
                        _LOG.warning(
                            "chunk %s attempt %d failed (%s: %s); reconnecting in %.1f s",
                            chunk.name,
                            attempt,
                            type(exc).__name__,
                            exc,
                            wait,
                        )
                        session.close()
                        time.sleep(wait)
                faults.point("deliver.after_rename")
                ledger.record(
                    LedgerEntry(
                        scored_on=manifest.scored_on,
                        file=chunk.name,
                        sha256=chunk.sha256,
                        rows=chunk.rows,
                        bytes=chunk.bytes,
                        remote_path=remote_path,
                        delivered_at=datetime.now(UTC).isoformat(timespec="seconds"),
                        attempt=attempt,
                    )
                )
                if state.get("recovered"):
                    recovered.append(chunk.name)
                    continue
                sent.append(chunk.name)
                sent_bytes += chunk.bytes
        finally:
            session.close()
    return DeliveryReport(
        scored_on=manifest.scored_on,
        sent=len(sent),
        skipped=skipped,
        bytes=sent_bytes,
        attempts=attempts,
        files_sent=tuple(sent),
        removed=tuple(removed),
        recovered=tuple(recovered),
    )


def _open_with_retries(session: _Session, settings: Settings, backoff_seconds: float) -> Any:
    """Open the session, retrying connection failures (not host-key or credential errors)."""
    for attempt in range(1, settings.delivery_retries + 1):
        try:
            return session.open()
        except Exception as exc:
            if not _retryable(exc) or attempt == settings.delivery_retries:
                if _retryable(exc):
                    raise ChunkDeliveryError(
                        f"could not connect to the SFTP server of connection {session.conn_id!r} after {attempt} "
                        f"attempts: {type(exc).__name__}: {exc}"
                    ) from exc
                raise
            wait = min(backoff_seconds * 2 ** (attempt - 1), MAX_BACKOFF_S)
            _LOG.warning("connecting failed (%s: %s); retrying in %.1f s", type(exc).__name__, exc, wait)
            time.sleep(wait)
    raise AssertionError("unreachable")
