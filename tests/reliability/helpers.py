"""Helpers shared by the reliability tests: sandbox connections, secrets, snapshots, a log collector."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from leadscore.slate.client import SlateClient
from tests.slate.test_client import FakeSleep, sandbox_config

__all__ = ["FakeSleep", "LogCollector", "client_for", "sandbox_config", "sandbox_secrets", "sftp_conn", "snapshot"]


def client_for(sandbox: Any, **changes: Any) -> SlateClient:
    """A client of the sandbox's web service that never really sleeps between retries."""
    return SlateClient(sandbox_config(sandbox, **changes), sleep=FakeSleep())


def sftp_conn(sandbox: Any) -> dict[str, Any]:
    """The sandbox's slate_sftp connection with its host key given with its type (SSHHook needs it for ed25519)."""
    conn = json.loads(sandbox.connection_uris()["AIRFLOW_CONN_SLATE_SFTP"])
    conn["extra"]["host_key"] = sandbox.host_key_line
    return conn


def sandbox_secrets(sandbox: Any) -> list[str]:
    """Every secret of the sandbox: service-account and SFTP passwords and each query's ``h``."""
    creds = sandbox.credentials
    out = [creds.service_password, creds.sftp_password, *(q.h for q in creds.queries.values())]
    assert all(len(s) >= 8 for s in out), "sandbox secrets are too short to grep for reliably"
    return out


def snapshot(root: Path) -> dict[str, bytes]:
    """Relative path -> bytes of every file under ``root`` (empty when it does not exist)."""
    if not root.exists():
        return {}
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


class LogCollector(logging.Handler):
    """Keeps every formatted log record (with exception text) emitted while attached to the root logger."""

    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.lines: list[str] = []
        self.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.lines.append(self.format(record))
        except Exception:  # a record that cannot be formatted is still evidence: keep its raw parts
            self.lines.append(f"{record.name} {record.msg!r} {record.args!r}")

    def __enter__(self) -> LogCollector:
        root = logging.getLogger()
        self._level = root.level
        root.addHandler(self)
        root.setLevel(logging.DEBUG)
        return self

    def __exit__(self, *exc: object) -> None:
        root = logging.getLogger()
        root.removeHandler(self)
        root.setLevel(self._level)

    @property
    def text(self) -> str:
        return "\n".join(self.lines)


class NaNImpl:
    """A fitted candidate gone bad: delegates to a real one but answers NaN for every third lead (picklable)."""

    def __init__(self, impl: Any) -> None:
        self.impl = impl

    def predict_proba(self, features: Any) -> Any:
        p = self.impl.predict_proba(features).astype(float)
        p[::3] = float("nan")
        return p

    def contributions(self, features: Any) -> Any:
        return self.impl.contributions(features)
