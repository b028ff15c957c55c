"""Shared plumbing of the sandbox servers: file layout, credentials, private files and fault switches.

The sandbox data directory (written by ``leadscore.sandbox.generator``) holds ``leads.parquet``,
``interactions.parquet``, ``truth.parquet`` and ``meta.json``. The servers add, beside them, files that only the owner
may read: ``credentials.json`` (generated once, reused so that connection strings stay valid), the SFTP host and client
keys, the SFTP root with Slate's folders, the importer's ``slate_fields.parquet`` and ``import_log.jsonl``.
"""

from __future__ import annotations

import json
import secrets
import threading
import time
import uuid
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from leadscore.files import atomic_write_bytes, private_dir
from leadscore.slate.queries import QUERIES

# Slate's SFTP folders, relative to the chroot (BRIEF §2).
SFTP_IMPORT_DIR = "incoming/lead_scores"
SFTP_PROCESSED_DIR = "incoming/processed"
SFTP_TEST_DIR = "test/incoming"
SFTP_FOLDERS: tuple[str, ...] = (SFTP_IMPORT_DIR, SFTP_PROCESSED_DIR, SFTP_TEST_DIR)

SERVICE_USER = "svc_leadscore"
SFTP_USER = "leadscore"


class SandboxError(RuntimeError):
    """The sandbox directory is missing a file or holds one that does not follow the contract."""


@dataclass(frozen=True)
class SandboxPaths:
    """Where each sandbox file lives under one data directory."""

    data_dir: Path

    @property
    def leads(self) -> Path:
        return self.data_dir / "leads.parquet"

    @property
    def interactions(self) -> Path:
        return self.data_dir / "interactions.parquet"

    @property
    def truth(self) -> Path:
        return self.data_dir / "truth.parquet"

    @property
    def meta(self) -> Path:
        return self.data_dir / "meta.json"

    @property
    def credentials(self) -> Path:
        return self.data_dir / "credentials.json"

    @property
    def host_key(self) -> Path:
        return self.data_dir / "sftp_host_key"

    @property
    def client_key(self) -> Path:
        return self.data_dir / "sftp_client_key"

    @property
    def sftp_root(self) -> Path:
        return self.data_dir / "sftp_root"

    @property
    def slate_fields(self) -> Path:
        return self.data_dir / "slate_fields.parquet"

    @property
    def import_log(self) -> Path:
        return self.data_dir / "import_log.jsonl"


# One implementation of owner-only folders and atomic owner-only files for the whole project.
make_private_dir = private_dir
write_private = atomic_write_bytes


@dataclass(frozen=True)
class QueryCredential:
    """The GUID of one exposed query and its ``h`` hash."""

    id: str
    h: str


@dataclass(frozen=True)
class SandboxCredentials:
    """Every secret of one sandbox: the service account, each query's GUID and ``h``, the SFTP login."""

    service_user: str
    service_password: str
    queries: dict[str, QueryCredential]
    sftp_user: str
    sftp_password: str

    def query_by_id(self, query_id: str) -> str | None:
        """The query name whose GUID is ``query_id`` (compared case-insensitively), or None."""
        wanted = query_id.strip().lower()
        for name, cred in self.queries.items():
            if cred.id == wanted:
                return name
        return None

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> SandboxCredentials:
        raw = json.loads(text)
        return cls(
            service_user=raw["service_user"],
            service_password=raw["service_password"],
            queries={name: QueryCredential(**q) for name, q in raw["queries"].items()},
            sftp_user=raw["sftp_user"],
            sftp_password=raw["sftp_password"],
        )


def load_or_create_credentials(data_dir: Path) -> SandboxCredentials:
    """Read ``<data_dir>/credentials.json``, creating it (mode 0600, random secrets) on first use.

    A query added to ``slate.queries.QUERIES`` later gets its GUID and ``h`` added to the existing file; secrets
    already issued are never changed, so connection strings printed earlier stay valid.

    Raises:
        SandboxError: the file exists but cannot be parsed (delete it to issue new secrets).
    """
    path = SandboxPaths(data_dir).credentials
    if path.exists():
        try:
            creds = SandboxCredentials.from_json(path.read_text())
        except (ValueError, KeyError, TypeError) as exc:
            raise SandboxError(f"{path} is not a valid credentials file ({exc}); delete it to issue new ones") from exc
        missing = [name for name in QUERIES if name not in creds.queries]
        if not missing:
            return creds
        queries = dict(creds.queries)
        queries.update({name: _new_query_credential() for name in missing})
        creds = SandboxCredentials(
            creds.service_user, creds.service_password, queries, creds.sftp_user, creds.sftp_password
        )
    else:
        creds = SandboxCredentials(
            service_user=SERVICE_USER,
            service_password=secrets.token_urlsafe(18),
            queries={name: _new_query_credential() for name in QUERIES},
            sftp_user=SFTP_USER,
            sftp_password=secrets.token_urlsafe(18),
        )
    write_private(path, creds.to_json().encode())
    return creds


def _new_query_credential() -> QueryCredential:
    return QueryCredential(id=str(uuid.uuid4()), h=secrets.token_hex(16))


def read_meta(data_dir: Path) -> dict[str, Any]:
    """The generator's ``meta.json`` with ``end`` (the sandbox's "now") parsed to a tz-naive UTC datetime.

    Raises:
        SandboxError: the file is missing or has no valid ``end``.
    """
    path = SandboxPaths(data_dir).meta
    if not path.exists():
        raise SandboxError(f"{path} is missing: generate the sandbox first (python -m leadscore sandbox generate)")
    meta = json.loads(path.read_text())
    try:
        end = datetime.fromisoformat(str(meta["end"]))
    except (KeyError, ValueError) as exc:
        raise SandboxError(f"{path} has no valid ISO 'end' datetime: {exc}") from exc
    if end.tzinfo is not None:
        end = end.astimezone(UTC).replace(tzinfo=None)
    meta["end"] = end
    return meta


@dataclass
class Fault:
    """One armed fault: what it does, how many more times it fires, and which requests it applies to."""

    kind: str
    count: int = 1
    query: str | None = None  # web service: query name; SFTP: fnmatch pattern of the file name
    page: int | None = None  # web service: 1-based page number
    params: dict[str, Any] = field(default_factory=dict)


class FaultSwitches:
    """Thread-safe set of armed faults. Each fault fires for its next ``count`` matching events, then clears.

    ``kinds`` names the faults this switchboard accepts; setting any other kind raises ValueError.
    """

    def __init__(self, kinds: dict[str, str]) -> None:
        self.kinds = dict(kinds)
        self._lock = threading.Lock()
        self._faults: list[Fault] = []
        self.fired: list[dict[str, Any]] = []

    def set(
        self, kind: str, count: int = 1, *, query: str | None = None, page: int | None = None, **params: Any
    ) -> Fault:
        """Arm ``kind`` for the next ``count`` matching events (optionally only for ``query``/``page``).

        Extra keyword arguments are the fault's parameters (e.g. ``seconds`` of ``slow``).
        Raises ValueError for an unknown kind or a count below 1.
        """
        if kind not in self.kinds:
            raise ValueError(f"unknown fault {kind!r}; known: {', '.join(sorted(self.kinds))}")
        if int(count) < 1:
            raise ValueError(f"fault {kind!r}: count must be at least 1, got {count}")
        fault = Fault(kind=kind, count=int(count), query=query, page=None if page is None else int(page), params=params)
        with self._lock:
            self._faults.append(fault)
        return fault

    def clear(self) -> None:
        """Disarm every fault and forget which fired."""
        with self._lock:
            self._faults.clear()
            self.fired.clear()

    def armed(self) -> list[dict[str, Any]]:
        """The armed faults as plain dicts (for the control endpoint and logs)."""
        with self._lock:
            return [asdict(f) for f in self._faults]

    def take(self, kinds: tuple[str, ...] | None = None, match: Any = None) -> Fault | None:
        """Consume one firing of the first armed fault (of ``kinds``) accepted by ``match(fault)``.

        Returns a copy of the fault that fired, or None when none applies.
        """
        with self._lock:
            for fault in self._faults:
                if kinds is not None and fault.kind not in kinds:
                    continue
                if match is not None and not match(fault):
                    continue
                fault.count -= 1
                if fault.count <= 0:
                    self._faults.remove(fault)
                self.fired.append({"kind": fault.kind, "time": time.time(), "params": dict(fault.params)})
                return Fault(fault.kind, 1, fault.query, fault.page, dict(fault.params))
        return None
