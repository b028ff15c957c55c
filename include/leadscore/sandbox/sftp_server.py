"""The sandbox's SFTP server: asyncssh on 127.0.0.1, chrooted to Slate's folders, with fault switches.

One user logs in by password or by public key. The ed25519 host key is created once in the sandbox directory and
reused, so a client can pin it (``host_key_b64`` as in known_hosts, ``host_key_line`` as an OpenSSH public key line).
The server runs its own event loop in a daemon thread, so it works the same under pytest and under the CLI.

Faults (``server.faults.set(kind, count=1, query=<fnmatch of the file name>, **params)``), counted per event:

- ``permission_denied``: opening a file for writing fails with permission denied.
- ``disk_full`` (``after_bytes``, default 0): writes to the next uploaded file fail once it would exceed N bytes.
- ``slow`` (``seconds``, default 1): the next upload waits N seconds at open and again at close.
- ``drop_upload`` (``after_bytes``, default 0): the connection is dropped once the file has N bytes (kept on disk).
- ``drop_rename``: the connection is dropped on a rename, which is not performed.
- ``drop_after_files`` (``files``, default 1): the connection is dropped when its N-th uploaded file is closed.
"""

from __future__ import annotations

import asyncio
import fnmatch
import os
import posixpath
import secrets
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncssh

from leadscore.sandbox.config import (
    SFTP_FOLDERS,
    FaultSwitches,
    SandboxCredentials,
    SandboxPaths,
    make_private_dir,
    write_private,
)

SFTP_FAULTS: dict[str, str] = {
    "permission_denied": "opening a file for writing fails with permission denied",
    "disk_full": "writes fail once the uploaded file would exceed after_bytes (default 0)",
    "slow": "the next upload waits `seconds` (default 1) at open and at close",
    "drop_upload": "drop the connection once the uploaded file holds after_bytes (default 0)",
    "drop_rename": "drop the connection on a rename, without renaming",
    "drop_after_files": "drop the connection when the connection's N-th (param files, default 1) upload is closed",
}


@dataclass(frozen=True)
class HostKey:
    """The server's public host key in the forms clients pin it by."""

    b64: str  # base64 key blob, as in known_hosts and in the slate_sftp connection's extra "host_key"
    line: str  # "ssh-ed25519 AAAA..." (OpenSSH public key line)
    algorithm: str


def load_or_create_key(path: Path) -> asyncssh.SSHKey:
    """Read the ed25519 private key at ``path`` or create it (0600, OpenSSH format, plus ``<path>.pub``) once."""
    if path.exists():
        return asyncssh.read_private_key(str(path))
    key = asyncssh.generate_private_key("ssh-ed25519", comment="leadscore-sandbox")
    write_private(path, key.export_private_key("openssh"))
    write_private(path.with_name(path.name + ".pub"), key.export_public_key("openssh"))
    return key


def public_key_of(key: asyncssh.SSHKey) -> HostKey:
    """The pinning forms of a key's public half."""
    algorithm, blob = key.export_public_key("openssh").decode().split()[:2]
    return HostKey(b64=blob, line=f"{algorithm} {blob}", algorithm=algorithm)


def prepare_root(root: Path) -> Path:
    """Create the chroot with Slate's folders (owner-only) and return it."""
    make_private_dir(root)
    for folder in SFTP_FOLDERS:
        make_private_dir(root / folder)
    return root


class _Upload:
    __slots__ = ("disk_full", "drop_upload", "name", "slow", "written")

    def __init__(self, name: str) -> None:
        self.name = name
        self.written = 0
        self.disk_full: int | None = None
        self.drop_upload: int | None = None
        self.slow = 0.0


class _SandboxSFTP(asyncssh.SFTPServer):
    """Chrooted SFTP session with the fault hooks of its SandboxSFTPServer."""

    def __init__(self, chan: asyncssh.SSHServerChannel, owner: SandboxSFTPServer) -> None:
        super().__init__(chan, chroot=str(owner.root).encode())
        self._owner = owner
        self._uploads: dict[int, _Upload] = {}
        self._closed_uploads = 0

    def _take(self, kinds: tuple[str, ...], name: str, extra: Any = None) -> Any:
        def match(f: Any) -> bool:
            ok = f.query is None or fnmatch.fnmatchcase(name, f.query)
            return ok and (extra is None or extra(f))

        return self._owner.faults.take(kinds, match)

    def _drop(self) -> None:
        self.connection.abort()

    async def open(self, path: bytes, pflags: int, attrs: asyncssh.SFTPAttrs) -> object:
        name = posixpath.basename(path.decode("utf-8", "replace"))
        writing = bool(pflags & (asyncssh.FXF_WRITE | asyncssh.FXF_APPEND | asyncssh.FXF_CREAT))
        upload = _Upload(name)
        if writing:
            if self._take(("permission_denied",), name):
                raise asyncssh.SFTPPermissionDenied(f"permission denied: {name}")
            slow = self._take(("slow",), name)
            if slow:
                upload.slow = float(slow.params.get("seconds", 1))
                await asyncio.sleep(upload.slow)
            full = self._take(("disk_full",), name)
            if full:
                upload.disk_full = int(full.params.get("after_bytes", 0))
            drop = self._take(("drop_upload",), name)
            if drop:
                upload.drop_upload = int(drop.params.get("after_bytes", 0))
            attrs = asyncssh.SFTPAttrs(permissions=0o600)  # uploaded files are owner-only
        file_obj = super().open(path, pflags, attrs)
        if writing:
            self._uploads[id(file_obj)] = upload
        return file_obj

    async def write(self, file_obj: object, offset: int, data: bytes) -> int:
        upload = self._uploads.get(id(file_obj))
        if upload is not None:
            end = offset + len(data)
            if upload.drop_upload is not None and end > upload.drop_upload:
                keep = max(0, upload.drop_upload - offset)
                if keep:
                    super().write(file_obj, offset, data[:keep])
                file_obj.flush()  # type: ignore[attr-defined]
                self._drop()
                raise asyncssh.SFTPConnectionLost("connection dropped by fault drop_upload")
            if upload.disk_full is not None and end > upload.disk_full:
                raise asyncssh.SFTPFailure("No space left on device")
            upload.written = max(upload.written, end)
        return super().write(file_obj, offset, data)  # type: ignore[return-value]

    async def close(self, file_obj: object) -> None:
        upload = self._uploads.pop(id(file_obj), None)
        super().close(file_obj)
        if upload is None:
            return
        if upload.slow:
            await asyncio.sleep(upload.slow)
        self._closed_uploads += 1
        done = self._closed_uploads
        if self._take(("drop_after_files",), upload.name, lambda f: done >= int(f.params.get("files", 1))):
            self._drop()

    async def rename(self, oldpath: bytes, newpath: bytes) -> None:
        self._rename_fault(newpath)
        super().rename(oldpath, newpath)

    async def posix_rename(self, oldpath: bytes, newpath: bytes) -> None:
        self._rename_fault(newpath)
        super().posix_rename(oldpath, newpath)

    def _rename_fault(self, newpath: bytes) -> None:
        name = posixpath.basename(newpath.decode("utf-8", "replace"))
        if self._take(("drop_rename",), name):
            self._drop()
            raise asyncssh.SFTPConnectionLost("connection dropped by fault drop_rename")


class _SSHServer(asyncssh.SSHServer):
    def __init__(self, owner: SandboxSFTPServer) -> None:
        self._owner = owner
        self._conn: asyncssh.SSHServerConnection | None = None

    def connection_made(self, conn: asyncssh.SSHServerConnection) -> None:
        self._conn = conn
        self._owner._connections.add(conn)

    def connection_lost(self, exc: Exception | None) -> None:
        self._owner._connections.discard(self._conn)

    def begin_auth(self, username: str) -> bool:
        if username == self._owner.credentials.sftp_user and self._conn is not None:
            self._conn.set_authorized_keys(asyncssh.import_authorized_keys(self._owner.client_key_line + "\n"))
        return True

    def password_auth_supported(self) -> bool:
        return True

    def validate_password(self, username: str, password: str) -> bool:
        creds = self._owner.credentials
        return username == creds.sftp_user and secrets.compare_digest(password.encode(), creds.sftp_password.encode())

    def public_key_auth_supported(self) -> bool:
        return True


class SandboxSFTPServer:
    """The SFTP server of one sandbox directory.

    Args:
        data_dir: the sandbox directory (holds the host key, the client key and ``sftp_root/``).
        credentials: the sandbox's secrets (SFTP user and password).
        host: bind address (127.0.0.1 only, by design).
        port: TCP port; 0 picks a free one.
    """

    def __init__(self, data_dir: Path, credentials: SandboxCredentials, host: str = "127.0.0.1", port: int = 0) -> None:
        self.paths = SandboxPaths(data_dir)
        self.credentials = credentials
        self.host = host
        self._requested_port = port
        self.root = prepare_root(self.paths.sftp_root).resolve()
        self._host_key = load_or_create_key(self.paths.host_key)
        self.host_key = public_key_of(self._host_key)
        self.client_key_path = self.paths.client_key
        self.client_key_line = public_key_of(load_or_create_key(self.client_key_path)).line
        self.faults = FaultSwitches(SFTP_FAULTS)
        self._connections: set[Any] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: asyncssh.SSHAcceptor | None = None
        self.port = 0

    def start(self) -> SandboxSFTPServer:
        """Start the event loop thread and listen; returns self. Raises OSError when the port is taken."""
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="slate-sftp", daemon=True)
        self._thread.start()
        future = asyncio.run_coroutine_threadsafe(self._listen(), self._loop)
        try:
            future.result(timeout=30)
        except BaseException:
            self.stop()
            raise
        return self

    async def _listen(self) -> None:
        self._server = await asyncssh.create_server(
            lambda: _SSHServer(self),
            self.host,
            self._requested_port,
            server_host_keys=[self._host_key],
            sftp_factory=lambda chan: _SandboxSFTP(chan, self),
            allow_scp=False,
        )
        self.port = int(self._server.sockets[0].getsockname()[1])

    async def _close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        for conn in list(self._connections):
            conn.abort()

    def stop(self) -> None:
        """Close the listener and every connection, stop the loop thread."""
        if self._loop is None:
            return
        if self._loop.is_running():
            asyncio.run_coroutine_threadsafe(self._close(), self._loop).result(timeout=10)
            self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread is not None:
            self._thread.join(timeout=10)
        self._loop.close()
        self._loop = None

    def local_path(self, remote: str) -> Path:
        """The file on disk behind a path inside the chroot (e.g. ``/incoming/lead_scores/x.csv``)."""
        return self.root / remote.lstrip("/")


def sftp_file_mode(path: Path) -> int:
    """The permission bits of a file (for tests of the owner-only rule)."""
    return os.stat(path).st_mode & 0o777
