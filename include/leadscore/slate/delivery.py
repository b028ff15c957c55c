"""Push one scoring date's score files to Slate's SFTP through Airflow's ``SFTPHook`` (connection ``slate_sftp``).

Protocol per chunk (BRIEF §6): remove a stale ``<name>.part``, upload as ``<name>.part`` (Slate's mask
``lead_scores_*.csv`` cannot match it), check its remote size, rename to ``<name>`` (``posix-rename@openssh.com``,
which replaces an existing file atomically; on servers without it: remove the old file, then rename), check the size
again, and record the chunk in the ledger (local files, or the shared database of ``LEADSCORE_LEDGER_CONN_ID``). A
failed chunk is retried ``Settings.delivery_retries`` times in all, with exponential backoff and a fresh connection
each time. All chunks share one managed connection otherwise.

What counts as delivered: the ledger, not the remote folder, because Slate moves picked-up files to
``/incoming/processed/`` and deletes them after 30 days. A re-run of a week sends only chunks whose name and SHA-256
are not in the ledger. Before uploading, files of the same date in the remote folder that are ``.part`` leftovers or
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

from leadscore.scoring.files import Manifest, ScoreFile, date_key, parse_chunk_name
from leadscore.settings import Settings
from leadscore.slate.ledger import DeliveryLedger, Ledger, LedgerEntry

_LOG = logging.getLogger(__name__)
CONN_ID = "slate_sftp"
CONNECT_TIMEOUT_S = 30
IO_TIMEOUT_S = 120.0
MAX_BACKOFF_S = 60.0


class DeliveryError(RuntimeError):
    """Base class of every delivery error."""


class DeliveryConfigError(DeliveryError):
    """The ``slate_sftp`` connection or the remote folder is not set up as delivery requires."""


class HostKeyError(DeliveryError):
    """The SFTP server's host key is unknown or differs from the key pinned in the connection."""


class DeliveryAuthError(DeliveryError):
    """The SFTP server refused the connection's credentials."""


class LocalFileError(DeliveryError):
    """A local chunk is missing or no longer matches its manifest."""


class ChunkDeliveryError(DeliveryError):
    """A chunk could not be delivered within the allowed attempts."""


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
    """

    scored_on: str
    sent: int
    skipped: int
    bytes: int
    attempts: int
    dry_run: bool = False
    files_sent: tuple[str, ...] = ()
    removed: tuple[str, ...] = field(default_factory=tuple)


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


def _host_label(hook: Any) -> str:
    return f"{hook.remote_host}:{hook.port or 22}"


def _make_hook(conn_id: str) -> Any:
    from airflow.providers.sftp.hooks.sftp import SFTPHook  # Airflow only where delivery really runs

    # conn_retry_attempts=1: the hook's own retry sleeps ~5 s per attempt even on a host-key mismatch; connection
    # failures are retried here, per chunk, where a host-key mismatch is not retried at all.
    try:
        hook = SFTPHook(ssh_conn_id=conn_id, conn_retry_attempts=1)
    except Exception as exc:  # the hook parses the connection here: every failure is a configuration error
        raise DeliveryConfigError(
            f"connection {conn_id!r} cannot be used for SFTP: {type(exc).__name__}: {exc}. Define it (e.g. "
            f"AIRFLOW_CONN_{conn_id.upper()}) with host, port, login, password or key, and extra 'host_key' given "
            "as '<key type> <base64>', e.g. 'ssh-ed25519 AAAA...' (a bare base64 key is read as ssh-rsa)"
        ) from exc
    if hook.no_host_key_check or hook.allow_host_key_change:
        raise DeliveryConfigError(
            f"connection {conn_id!r} disables host key checking (no_host_key_check or allow_host_key_change); "
            "remove those extras and pin the server key in extra 'host_key'"
        )
    if hook.host_key is None:
        raise DeliveryConfigError(
            f"connection {conn_id!r} does not pin the SFTP server's host key: add extra 'host_key' "
            f"(e.g. the output of `ssh-keyscan -p {hook.port or 22} {hook.remote_host}`, key type and base64), "
            "after confirming the key with Slate out of band"
        )
    if hook.conn_timeout is None:
        hook.conn_timeout = CONNECT_TIMEOUT_S
    return hook


def _fingerprint(key: Any) -> str:
    return str(getattr(key, "fingerprint", None) or getattr(key, "get_name", lambda: "?")())


class _Session:
    """One managed SFTP connection that can be reopened after a failure."""

    def __init__(self, conn_id: str) -> None:
        self.conn_id = conn_id
        self.hook: Any = None
        self._ctx: Any = None
        self.sftp: Any = None

    def open(self) -> Any:
        import paramiko

        self.close()
        hook = _make_hook(self.conn_id)
        ctx = hook.get_managed_conn()
        try:
            sftp = ctx.__enter__()
        except paramiko.BadHostKeyException as exc:
            raise HostKeyError(
                f"SFTP server {_host_label(hook)} presented host key {_fingerprint(exc.key)} but connection "
                f"{self.conn_id!r} pins {_fingerprint(exc.expected_key)}; nothing was uploaded. If Slate changed "
                "its key, confirm the new key with Technolutions out of band and update the connection's extra "
                "'host_key'; otherwise treat this as a possible man-in-the-middle and do not deliver."
            ) from exc
        except paramiko.AuthenticationException as exc:
            raise DeliveryAuthError(
                f"SFTP server {_host_label(hook)} refused the credentials of connection {self.conn_id!r}: {exc}; "
                "check the login and password or key of the connection"
            ) from exc
        except paramiko.SSHException as exc:
            if "known_hosts" in str(exc):
                raise HostKeyError(
                    f"SFTP server {_host_label(hook)} offered no host key of the type pinned in connection "
                    f"{self.conn_id!r} ({exc}); confirm the server's key and update the extra 'host_key'"
                ) from exc
            raise
        sftp.get_channel().settimeout(IO_TIMEOUT_S)
        self.hook, self._ctx, self.sftp = hook, ctx, sftp
        return sftp

    def close(self) -> None:
        ctx, self._ctx, self.sftp = self._ctx, None, None
        if ctx is not None:
            try:
                ctx.__exit__(None, None, None)
            except Exception as exc:  # a dropped connection may fail to close; the next open starts afresh
                _LOG.debug("closing the SFTP connection failed: %s", exc)


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


def _send_chunk(sftp: Any, local: Path, remote_dir: str, chunk: ScoreFile, state: dict[str, bool]) -> str:
    """Upload, verify and rename one chunk; returns its remote path. ``state`` survives between attempts."""
    final = posixpath.join(remote_dir, chunk.name)
    part = final + ".part"
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
    verify_local_files(manifest)
    ledger = ledger_for(settings)
    remote_dir = settings.remote_dir.rstrip("/") or "/"

    def pending() -> list[ScoreFile]:
        latest = ledger.latest()
        return [f for f in manifest.files if not (f.name in latest and latest[f.name].sha256 == f.sha256)]

    if dry_run:
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
        todo = pending()  # re-read under the lock: a run that held it may just have delivered
        skipped = len(manifest.files) - len(todo)
        if not todo:
            _LOG.info("all %d chunks of %s already delivered; nothing to send", skipped, manifest.scored_on)
            return DeliveryReport(scored_on=manifest.scored_on, sent=0, skipped=skipped, bytes=0, attempts=0)
        session = _Session(conn_id)
        attempts, sent_bytes, sent, removed = 0, 0, [], []
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
                state: dict[str, bool] = {}
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
