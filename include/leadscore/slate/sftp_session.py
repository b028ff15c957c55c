"""One bounded SFTP connection to Slate through the Airflow SFTP provider's hook (used by ``slate.delivery``).

Every step waits at most the given timeout: connect, banner, key exchange and login through the hook's own timeouts,
and the SFTP session's opening (which paramiko does not bound) through a watchdog that closes the connection. A
pinned host key is required; a mismatch, refused credentials or a stalled server each raise their own
``slate.delivery_errors`` error naming the host and what to check.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from leadscore.slate.delivery_errors import DeliveryAuthError, DeliveryConfigError, DeliveryTimeout, HostKeyError

_LOG = logging.getLogger(__name__)
CONNECT_TIMEOUT_S = 30
IO_TIMEOUT_S = 120.0


def _host_label(hook: Any) -> str:
    return f"{hook.remote_host}:{hook.port or 22}"


def _make_hook(conn_id: str, timeout: float = IO_TIMEOUT_S) -> Any:
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
    if hook.conn_timeout is None or hook.conn_timeout > timeout:
        hook.conn_timeout = min(CONNECT_TIMEOUT_S, timeout)
    hook.banner_timeout = timeout
    hook.auth_timeout = timeout  # also bounds the key exchange (paramiko's start_client uses conn_timeout)
    return hook


def _fingerprint(key: Any) -> str:
    return str(getattr(key, "fingerprint", None) or getattr(key, "get_name", lambda: "?")())


class _BoundedConn:
    """The hook's SSH connection and an SFTP session on it, each step bounded by ``timeout`` seconds.

    Connect, banner, key exchange and login are bounded by the hook's own timeouts (set by ``_make_hook``). Opening
    the SFTP session (channel, subsystem request, version exchange) has no timeout in paramiko, so a watchdog closes
    the connection when it takes longer; ``timed_out`` and ``stage`` then say what hung.
    """

    def __init__(self, hook: Any, timeout: float) -> None:
        self.hook, self.timeout = hook, timeout
        self.ssh: Any = None
        self.sftp: Any = None
        self.timed_out = False
        self.stage = "connecting, handshake and login"

    def __enter__(self) -> Any:
        from airflow.providers.ssh.hooks.ssh import SSHHook

        self.ssh = SSHHook.get_conn(self.hook)  # the SSH client only: SFTPHook.get_conn would open SFTP unbounded
        self.stage = "opening the SFTP session"

        def expire() -> None:
            self.timed_out = True
            self.ssh.close()

        watchdog = threading.Timer(self.timeout, expire)
        watchdog.daemon = True
        watchdog.start()
        try:
            self.sftp = self.ssh.open_sftp()
        except BaseException:
            self.ssh.close()
            raise
        finally:
            watchdog.cancel()
        if self.timed_out:  # the watchdog fired just as the session opened: do not use a closed connection
            raise DeliveryTimeout(f"the SFTP session took longer than {self.timeout:g} s to open")
        return self.sftp

    def __exit__(self, *exc: object) -> None:
        try:
            if self.sftp is not None:
                self.sftp.close()
        finally:
            if self.ssh is not None:
                self.ssh.close()
            self.hook.client = None


class _Session:
    """One managed SFTP connection that can be reopened after a failure."""

    def __init__(self, conn_id: str, timeout: float = IO_TIMEOUT_S) -> None:
        self.conn_id = conn_id
        self.timeout = timeout
        self.hook: Any = None
        self._ctx: Any = None
        self.sftp: Any = None

    def open(self) -> Any:
        import paramiko

        self.close()
        hook = _make_hook(self.conn_id, self.timeout)
        ctx = _BoundedConn(hook, self.timeout)
        started = time.monotonic()
        try:
            sftp = ctx.__enter__()
        except (TimeoutError, EOFError, paramiko.SSHException) as exc:
            # paramiko reports a stalled handshake variously ("Error reading SSH protocol banner", "No existing
            # session" once start_client's wait ran out, EOF after the watchdog): a step that used up the timeout.
            hung = time.monotonic() - started >= self.timeout * 0.95
            if ctx.timed_out or hung or isinstance(exc, TimeoutError) or "banner" in str(exc).lower():
                raise DeliveryTimeout(
                    f"SFTP server {_host_label(hook)} accepted the connection but did not answer within "
                    f"{self.timeout:g} s ({ctx.stage}; {type(exc).__name__}: {exc}). Nothing was uploaded on this "
                    "connection; check the server, or raise LEADSCORE_SFTP_TIMEOUT if it is only slow"
                ) from exc
            if isinstance(exc, paramiko.BadHostKeyException):
                raise self._host_key_error(hook, exc) from exc
            if isinstance(exc, paramiko.AuthenticationException):
                raise DeliveryAuthError(
                    f"SFTP server {_host_label(hook)} refused the credentials of connection {self.conn_id!r}: "
                    f"{exc}; check the login and password or key of the connection"
                ) from exc
            if isinstance(exc, paramiko.SSHException) and "known_hosts" in str(exc):
                raise HostKeyError(
                    f"SFTP server {_host_label(hook)} offered no host key of the type pinned in connection "
                    f"{self.conn_id!r} ({exc}); confirm the server's key and update the extra 'host_key'"
                ) from exc
            raise
        sftp.get_channel().settimeout(self.timeout)
        self.hook, self._ctx, self.sftp = hook, ctx, sftp
        return sftp

    def _host_key_error(self, hook: Any, exc: Any) -> HostKeyError:
        return HostKeyError(
            f"SFTP server {_host_label(hook)} presented host key {_fingerprint(exc.key)} but connection "
            f"{self.conn_id!r} pins {_fingerprint(exc.expected_key)}; nothing was uploaded. If Slate changed "
            "its key, confirm the new key with Technolutions out of band and update the connection's extra "
            "'host_key'; otherwise treat this as a possible man-in-the-middle and do not deliver."
        )

    def close(self) -> None:
        ctx, self._ctx, self.sftp = self._ctx, None, None
        if ctx is not None:
            try:
                ctx.__exit__(None, None, None)
            except Exception as exc:  # a dropped connection may fail to close; the next open starts afresh
                _LOG.debug("closing the SFTP connection failed: %s", exc)
