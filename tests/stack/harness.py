"""Processes, waits and the REST client of the stack tests.

Every wait is bounded and fails with what was awaited plus the tails of the components' logs, because a red stack
test must say which component broke.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from leadscore.processes import stop_tree


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(1)
        return s.connect_ex(("127.0.0.1", port)) == 0


class StackError(AssertionError):
    """A stack component did not do what a test waited for; the message carries the components' log tails."""


@dataclass
class Component:
    """One service of the stack as a process, its output in a log file."""

    name: str
    argv: list[str]
    env: dict[str, str]
    log: Path
    cwd: Path
    proc: subprocess.Popen | None = None

    def start(self) -> Component:
        self.log.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log, "ab") as fh:
            self.proc = subprocess.Popen(
                self.argv,
                env=self.env,
                cwd=self.cwd,
                stdout=fh,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        return self

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout: float = 20.0) -> None:
        if self.proc is not None and self.proc.poll() is None:
            stop_tree(self.proc, timeout=timeout)
        elif self.proc is not None:
            stop_tree(self.proc, timeout=1)  # the leader exited: its children may not have

    def tail(self, lines: int = 40) -> str:
        if not self.log.exists():
            return "(no log)"
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])


@dataclass
class Stack:
    """The running components, by name; waits that report every component's log tail on failure."""

    components: dict[str, Component] = field(default_factory=dict)

    def add(self, component: Component) -> Component:
        self.components[component.name] = component.start()
        return component

    def report(self, lines: int = 30) -> str:
        parts = []
        for c in self.components.values():
            state = "running" if c.running() else f"exited {c.proc.returncode if c.proc else '?'}"
            parts.append(f"----- {c.name} ({state}; {c.log}) -----\n{c.tail(lines)}")
        return "\n".join(parts)

    def fail(self, message: str) -> StackError:
        return StackError(f"{message}\n{self.report()}")

    def check_alive(self) -> None:
        dead = [c.name for c in self.components.values() if not c.running()]
        if dead:
            raise self.fail(f"stack components exited: {dead}")

    def wait(self, what: str, probe: Callable[[], Any], timeout: float, interval: float = 2.0) -> Any:
        """Call ``probe`` until it returns a truthy value; fail after ``timeout`` seconds or when a component died."""
        deadline = time.monotonic() + timeout
        last_error: BaseException | None = None
        while True:
            self.check_alive()
            try:
                value = probe()
                if value:
                    return value
            except (OSError, ValueError, KeyError, urllib.error.URLError) as exc:
                last_error = exc
            if time.monotonic() > deadline:
                hint = f" (last error: {last_error!r})" if last_error else ""
                raise self.fail(f"timed out after {timeout:.0f} s waiting for {what}{hint}")
            time.sleep(interval)

    def stop(self) -> None:
        for c in reversed(list(self.components.values())):
            with contextlib.suppress(Exception):
                c.stop()


def run_checked(argv: list[str], env: dict[str, str], cwd: Path, log: Path, what: str, timeout: float = 300) -> str:
    """Run a one-shot command (an init step, a CLI call); its output goes to ``log`` and is returned.

    Raises:
        StackError: non-zero exit or timeout, with the output's tail.
    """
    log.parent.mkdir(parents=True, exist_ok=True)
    try:
        out = subprocess.run(
            argv, env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL
        )
    except subprocess.TimeoutExpired as exc:
        raise StackError(f"{what} did not finish in {timeout:.0f} s: {' '.join(argv)}") from exc
    text = out.stdout + out.stderr
    with open(log, "a") as fh:
        fh.write(f"$ {' '.join(argv)}\n{text}\n")
    if out.returncode != 0:
        tail = "\n".join(text.splitlines()[-40:])
        raise StackError(f"{what} failed (exit {out.returncode}): {' '.join(argv)}\n{tail}")
    return text


class ApiClient:
    """Airflow's REST API v2 with a JWT from the simple auth manager's ``/auth/token``."""

    def __init__(self, base_url: str, username: str, password: str) -> None:
        self.base_url = base_url.rstrip("/")
        self.username = username
        self.password = password
        self._token: str | None = None

    def token(self) -> str:
        if self._token is None:
            status, body = self._call("POST", "/auth/token", {"username": self.username, "password": self.password})
            if status != 201:
                raise StackError(f"login as {self.username} failed: {status} {body}")
            self._token = body["access_token"]
        return self._token

    def _call(self, method: str, path: str, payload: Any = None, auth: bool = False) -> tuple[int, Any]:
        data = None if payload is None else json.dumps(payload).encode()
        req = urllib.request.Request(self.base_url + path, data=data, method=method)
        req.add_header("Content-Type", "application/json")
        if auth:
            req.add_header("Authorization", f"Bearer {self.token()}")
        try:
            with urllib.request.urlopen(req, timeout=30) as resp:
                raw = resp.read()
                status = resp.status
        except urllib.error.HTTPError as exc:
            raw, status = exc.read(), exc.code
        try:
            return status, json.loads(raw) if raw else None
        except json.JSONDecodeError:
            return status, raw.decode(errors="replace")

    def request(self, method: str, path: str, payload: Any = None) -> tuple[int, Any]:
        """(status, parsed body) of an authenticated call to ``/api/v2`` + ``path``."""
        status, body = self._call(method, "/api/v2" + path, payload, auth=True)
        if status == 401:  # the token expired: log in again once
            self._token = None
            status, body = self._call(method, "/api/v2" + path, payload, auth=True)
        return status, body

    def get(self, path: str) -> Any:
        status, body = self.request("GET", path)
        if status != 200:
            raise StackError(f"GET {path}: {status} {body}")
        return body

    def dag_runs(self, dag_id: str) -> list[dict]:
        return self.get(f"/dags/{dag_id}/dagRuns?limit=100&order_by=logical_date")["dag_runs"]

    def task_instances(self, dag_id: str, run_id: str) -> list[dict]:
        from urllib.parse import quote

        return self.get(f"/dags/{dag_id}/dagRuns/{quote(run_id)}/taskInstances?limit=100")["task_instances"]

    def xcom(self, dag_id: str, run_id: str, task_id: str) -> Any:
        from urllib.parse import quote

        body = self.get(
            f"/dags/{dag_id}/dagRuns/{quote(run_id)}/taskInstances/{task_id}/xcomEntries/return_value?deserialize=true"
        )
        value = body["value"]
        return json.loads(value) if isinstance(value, str) else value


def environ_without_airflow() -> dict[str, str]:
    """This process's environment minus Airflow/LeadScore variables (the test session's own must not leak in)."""
    return {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "LEADSCORE_"))}
