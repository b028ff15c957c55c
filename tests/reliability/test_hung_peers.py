"""Hung peers: servers on 127.0.0.1 that accept and then stall must end in a clear timeout, within a configured time.

The product's own timeouts end every case: each call runs in a thread joined with a generous bound (BOUND_S), and a
call still running then fails the test; the suite's timeout is never what ends it.

- Web service: headers and part of the body, then nothing (the per-read timeout ends it), and a drip-feed of one
  byte at a time (each read succeeds, so only the total deadline per page, ``page_timeout``, ends it).
- SFTP: a TCP server that never sends its banner; an SSH server (asyncssh) that logs the user in and then never
  answers the SFTP subsystem (paramiko has no timeout there: the delivery's watchdog ends it).
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import asyncssh
import pytest

from leadscore.settings import Settings
from leadscore.slate.delivery import ChunkDeliveryError, deliver, ledger_for
from leadscore.slate.errors import SlateTransientError
from tests.reliability.helpers import client_for, sandbox_secrets
from tests.slate.test_delivery import write_files

BOUND_S = 60.0  # far above every configured timeout below; reaching it means the product did not time out
PAGE_TIMEOUT_S, READ_TIMEOUT_S, SFTP_TIMEOUT_S = 2.0, 1.0, 2.0


def ends_within(call: Callable[[], Any], bound: float = BOUND_S) -> BaseException | None:
    """Run ``call`` in a thread; the exception it ended with (None if it returned). Fails if still running."""
    out: dict[str, BaseException | None] = {"exc": None}

    def target() -> None:
        try:
            call()
        except BaseException as exc:  # kept for the assertions
            out["exc"] = exc

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(bound)
    assert not thread.is_alive(), f"still waiting after {bound} s: the product's own timeout never fired"
    return out["exc"]


class StallingHttp:
    """A raw-socket HTTP server: answers 200 with headers and the start of a JSON body, then stalls or drips."""

    def __init__(self, drip: bool) -> None:
        self.drip = drip
        self.stop = threading.Event()
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        self.sock.settimeout(0.2)
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            except OSError:  # closed
                return
            threading.Thread(target=self._answer, args=(conn,), daemon=True).start()

    def _answer(self, conn: socket.socket) -> None:
        with conn:
            conn.recv(65536)
            head = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n"
            conn.sendall(head + b'{"row":[{"person_guid":"')
            while not self.stop.wait(0.2 if self.drip else 1.0):
                if self.drip:
                    try:
                        conn.sendall(b"a")
                    except OSError:
                        return

    def close(self) -> None:
        self.stop.set()
        self.sock.close()


@pytest.mark.parametrize("drip", [False, True], ids=["stalls-mid-body", "drip-feed"])
def test_a_web_service_that_stalls_mid_body_times_out_with_a_clear_error(sandbox: Any, drip: bool) -> None:
    server = StallingHttp(drip)
    try:
        client = client_for(
            sandbox,
            base_url=f"http://127.0.0.1:{server.port}",
            read_timeout=READ_TIMEOUT_S,
            page_timeout=PAGE_TIMEOUT_S,
            max_retries=1,
        )
        exc = ends_within(lambda: client.fetch_all("leads", None, None, 100))
    finally:
        server.close()
    assert isinstance(exc, SlateTransientError), repr(exc)
    message = str(exc)
    assert "leads" in message and "page 1" in message and "gave up after 2 attempts" in message
    expected = f"page_timeout {PAGE_TIMEOUT_S:g} s" if drip else f"read {READ_TIMEOUT_S} s"
    assert expected in message, message
    assert all(s not in message for s in sandbox_secrets(sandbox))


class StallingSsh:
    """An asyncssh server on 127.0.0.1 that accepts any password, then never answers the SFTP subsystem."""

    def __init__(self) -> None:
        self.key = asyncssh.generate_private_key("ssh-ed25519")
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.server = asyncio.run_coroutine_threadsafe(self._listen(), self.loop).result(10)
        self.port = self.server.sockets[0].getsockname()[1]

    async def _listen(self) -> Any:
        class Stall(asyncssh.SSHServerSession):  # accepts the sftp subsystem, then never answers its first message
            def subsystem_requested(self, subsystem: str) -> bool:
                return True

            def data_received(self, data: Any, datatype: Any) -> None:
                return None

        class Server(asyncssh.SSHServer):
            def begin_auth(self, username: str) -> bool:
                return True

            def password_auth_supported(self) -> bool:
                return True

            def validate_password(self, username: str, password: str) -> bool:
                return True

            def session_requested(self) -> asyncssh.SSHServerSession:
                return Stall()

        return await asyncssh.listen("127.0.0.1", 0, server_host_keys=[self.key], server_factory=Server)

    def host_key_line(self) -> str:
        return " ".join(self.key.export_public_key().decode().split()[:2])

    def close(self) -> None:
        async def shut() -> None:
            self.server.close()
            await self.server.wait_closed()

        asyncio.run_coroutine_threadsafe(shut(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


class SilentTcp:
    """Accepts TCP connections and never sends a byte (no SSH banner)."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.conns: list[socket.socket] = []
        self.stop = threading.Event()
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        self.sock.settimeout(0.2)
        while not self.stop.is_set():
            try:
                self.conns.append(self.sock.accept()[0])
            except TimeoutError:
                continue
            except OSError:  # closed
                return

    def close(self) -> None:
        self.stop.set()
        for c in self.conns:
            c.close()
        self.sock.close()


@pytest.fixture(params=["silent-after-accept", "stalls-after-login"])
def hung_sftp(request: pytest.FixtureRequest) -> Iterator[tuple[int, str, str]]:
    """(port, host key line, what hangs) of a hung SFTP peer."""
    if request.param == "silent-after-accept":
        server: Any = SilentTcp()
        key = " ".join(asyncssh.generate_private_key("ssh-ed25519").export_public_key().decode().split()[:2])
        yield server.port, key, "connecting, handshake and login"
    else:
        server = StallingSsh()
        yield server.port, server.host_key_line(), "opening the SFTP session"
    server.close()


def test_an_sftp_server_that_stalls_times_out_with_a_clear_error(
    sandbox: Any, hung_sftp: tuple[int, str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    port, host_key, stage = hung_sftp
    conn = {
        "conn_type": "sftp",
        "host": "127.0.0.1",
        "port": port,
        "login": "leadscore",
        "password": "a-password-never-logged-0123",
        "extra": {"host_key": host_key},
    }
    monkeypatch.setenv("AIRFLOW_CONN_SLATE_SFTP", json.dumps(conn))
    settings = Settings(home=tmp_path / "home", delivery_retries=2, sftp_timeout=SFTP_TIMEOUT_S)
    manifest = write_files(sandbox, tmp_path / "home", 300, chunk_rows=150)
    exc = ends_within(lambda: deliver(manifest, settings, backoff_seconds=0.1))
    assert isinstance(exc, ChunkDeliveryError), repr(exc)
    message = str(exc)
    assert "after 2 attempts" in message and f"did not answer within {SFTP_TIMEOUT_S:g} s" in message, message
    assert stage in message and "LEADSCORE_SFTP_TIMEOUT" in message
    assert "a-password-never-logged-0123" not in message
    assert ledger_for(settings).entries() == []
