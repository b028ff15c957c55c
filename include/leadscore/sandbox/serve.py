"""Start the whole sandbox (query web service, SFTP server, importer) over one generated data directory.

``start_sandbox`` runs everything in background threads and returns a SandboxHandle (a context manager) for tests
and the demo; ``serve_forever``/``serve_command`` run it in the foreground for ``python -m leadscore sandbox serve``
and print the URLs, ports and the ``AIRFLOW_CONN_*`` lines to put in ``.env``.
"""

from __future__ import annotations

import json
import signal
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from types import FrameType, TracebackType
from typing import TextIO

import pandas as pd

from leadscore.sandbox.config import (
    SandboxCredentials,
    SandboxError,
    SandboxPaths,
    load_or_create_credentials,
    make_private_dir,
    read_meta,
)
from leadscore.sandbox.dirt import WireDirt
from leadscore.sandbox.importer import DEFAULT_MASK, SlateImporter
from leadscore.sandbox.sftp_server import SandboxSFTPServer
from leadscore.sandbox.webservice import FAULTS_PATH, QUERY_PATH, QueryWebService, build_tables
from leadscore.slate.keyorder import DEFAULT_KEY_ORDER

HOST = "127.0.0.1"


@dataclass
class SandboxHandle:
    """A running sandbox: its servers, importer, secrets and the connection strings that reach it."""

    data_dir: Path
    paths: SandboxPaths
    credentials: SandboxCredentials
    web: QueryWebService
    sftp: SandboxSFTPServer
    importer: SlateImporter
    advertise_host: str = HOST  # the host name clients use (e.g. "sandbox" inside the Docker stack)

    @property
    def web_url(self) -> str:
        """Base URL of the query web service, e.g. ``http://127.0.0.1:18080``."""
        return self.web.url

    @property
    def query_url(self) -> str:
        """Full URL of ``/manage/query/run``."""
        return self.web.url + QUERY_PATH

    @property
    def sftp_host(self) -> str:
        return self.sftp.host

    @property
    def sftp_port(self) -> int:
        return self.sftp.port

    @property
    def host_key_b64(self) -> str:
        """The SFTP host key's base64 blob (as in known_hosts): what the slate_sftp connection pins."""
        return self.sftp.host_key.b64

    @property
    def host_key_line(self) -> str:
        """The SFTP host key as an OpenSSH public key line (``ssh-ed25519 AAAA...``)."""
        return self.sftp.host_key.line

    @property
    def client_key_path(self) -> Path:
        """Private key (OpenSSH format) accepted for the SFTP user's public-key login."""
        return self.sftp.client_key_path

    def connection_uris(self) -> dict[str, str]:
        """``AIRFLOW_CONN_SLATE_API`` and ``AIRFLOW_CONN_SLATE_SFTP`` as JSON strings (shape of .env.example)."""
        creds = self.credentials
        extra: dict[str, object] = {"queries": {name: {"id": q.id, "h": q.h} for name, q in creds.queries.items()}}
        if self.web.key_order != DEFAULT_KEY_ORDER:  # the default (SQL Server order, as Slate) needs no knob
            extra["key_order"] = self.web.key_order
        api = {
            "conn_type": "http",
            "host": self.advertise_host,
            "port": self.web.port,
            "schema": "http",
            "login": creds.service_user,
            "password": creds.service_password,
            "extra": extra,
        }
        sftp = {
            "conn_type": "sftp",
            "host": self.advertise_host,
            "port": self.sftp.port,
            "login": creds.sftp_user,
            "password": creds.sftp_password,
            "extra": {"host_key": self.host_key_line, "no_host_key_check": False},
        }
        return {"AIRFLOW_CONN_SLATE_API": json.dumps(api), "AIRFLOW_CONN_SLATE_SFTP": json.dumps(sftp)}

    def stop(self) -> None:
        """Stop the importer, the SFTP server and the web service."""
        self.importer.stop()
        self.sftp.stop()
        self.web.stop()

    def __enter__(self) -> SandboxHandle:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def start_sandbox(
    data_dir: Path,
    web_port: int = 0,
    sftp_port: int = 0,
    *,
    importer_interval: float | None = None,
    import_mask: str = DEFAULT_MASK,
    include_nulls: bool = False,
    start_web: bool = True,
    host: str = HOST,
    advertise_host: str | None = None,
    key_order: str = DEFAULT_KEY_ORDER,
    timezone: str = "UTC",
    wire: WireDirt | None = None,
) -> SandboxHandle:
    """Load a generated sandbox directory and start its servers on 127.0.0.1.

    Args:
        data_dir: directory written by the generator (leads/interactions parquet, meta.json).
        web_port: port of the query web service; 0 picks a free one.
        sftp_port: port of the SFTP server; 0 picks a free one.
        importer_interval: seconds between background importer polls; None polls only on ``importer.poll()``.
        import_mask: the Source Format's file-name mask.
        include_nulls: serve NULL columns as "" instead of omitting them.
        start_web: False leaves the web service unstarted (``serve_forever`` runs it in the foreground).
        host: the address to bind: 127.0.0.1 by default; only a container (the Docker stack) binds 0.0.0.0.
        advertise_host: the host name put in the connection strings (default: ``host``).
        key_order: how the web service orders the GUID paging key: ``sqlserver`` (as Slate) or ``text``; the
            connection strings carry ``extra.key_order`` when it is not the client's default.
        timezone: the IANA zone of the emulated instance: stamps are served, and since/until read, as its wall time.
        wire: the real-answer value formats to serve (default: the ``wire`` dirt recorded in meta.json at
            generation, none when the meta has none).
    Returns:
        A SandboxHandle; stop it (or use it as a context manager) to free the ports.
    Raises:
        SandboxError: the directory lacks the generator's files.
        OSError: a port is taken.
    """
    data_dir = Path(data_dir).resolve()
    paths = SandboxPaths(data_dir)
    for required in (paths.leads, paths.interactions):
        if not required.exists():
            raise SandboxError(f"{required} is missing: run `python -m leadscore sandbox generate --out {data_dir}`")
    make_private_dir(data_dir)
    meta = read_meta(data_dir)
    credentials = load_or_create_credentials(data_dir)
    leads = pd.read_parquet(paths.leads)
    interactions = pd.read_parquet(paths.interactions)
    if wire is None:
        wire = wire_dirt_of(meta)
    web = QueryWebService(
        build_tables(leads, interactions, key_order=key_order, timezone=timezone),
        credentials,
        meta["end"],
        host,
        web_port,
        include_nulls=include_nulls,
        timezone=timezone,
        wire=wire,
    )
    known = pd.Index(leads["person_guid"].dropna().astype("string").str.strip().str.lower().unique())
    del leads, interactions
    sftp: SandboxSFTPServer | None = None
    try:
        if start_web:
            web.start()
        sftp = SandboxSFTPServer(data_dir, credentials, host, sftp_port).start()
        importer = SlateImporter(data_dir, known_guids=known, mask=import_mask)
        if importer_interval is not None:
            importer.start(importer_interval)
    except BaseException:
        if sftp is not None:
            sftp.stop()
        web.stop()
        raise
    return SandboxHandle(data_dir, paths, credentials, web, sftp, importer, advertise_host or host)


def wire_dirt_of(meta: dict) -> WireDirt:
    """The WireDirt a generated sandbox was configured with (meta.json ``config.dirt.wire``); none when absent."""
    recorded = ((meta.get("config") or {}).get("dirt") or {}).get("wire")
    if not isinstance(recorded, dict):
        return WireDirt.none()
    try:
        return WireDirt(**recorded)
    except (TypeError, ValueError) as exc:
        raise SandboxError(
            f"meta.json config.dirt.wire is not a valid WireDirt ({exc}); regenerate the sandbox"
        ) from exc


def describe(handle: SandboxHandle, out: TextIO) -> None:
    """Print where the sandbox listens and the connection strings to put in ``.env``."""
    creds = handle.credentials
    lines = [
        f"Slate sandbox over {handle.data_dir}",
        f"  query web service : {handle.query_url} (instance time zone {handle.web.timezone})",
        f"  key order         : {handle.web.key_order} (GUID paging key; sqlserver is what Slate serves)",
        f"  faults (control)  : {handle.web_url}{FAULTS_PATH}  (POST JSON {{'kind': ...}}, Basic auth as below)",
        f"  SFTP              : sftp://{creds.sftp_user}@{handle.sftp_host}:{handle.sftp_port}/incoming/lead_scores/",
        f"  SFTP host key     : {handle.host_key_line}",
        f"  SFTP client key   : {handle.client_key_path}",
        f"  importer mask     : {handle.importer.mask} (processed files go to /incoming/processed/)",
        f"  import log        : {handle.paths.import_log}",
        "",
        "# .env lines for this sandbox:",
    ]
    lines += [f"{name}='{value}'" for name, value in handle.connection_uris().items()]
    out.write("\n".join(lines) + "\n")
    out.flush()


def serve_forever(
    data_dir: Path,
    web_port: int = 18080,
    sftp_port: int = 18022,
    importer_interval: float = 30.0,
    host: str = HOST,
    advertise_host: str | None = None,
    key_order: str = DEFAULT_KEY_ORDER,
    timezone: str = "UTC",
) -> None:
    """Serve the sandbox in the foreground until Ctrl-C or SIGTERM, polling the importer every few seconds."""
    handle = start_sandbox(
        data_dir,
        web_port,
        sftp_port,
        importer_interval=importer_interval,
        start_web=False,
        host=host,
        advertise_host=advertise_host,
        key_order=key_order,
        timezone=timezone,
    )

    def _terminate(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, _terminate)
    try:
        describe(handle, sys.stdout)
        handle.web.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)
        handle.stop()


def serve_command(
    data_dir: Path,
    web_port: int = 18080,
    sftp_port: int = 18022,
    host: str = HOST,
    advertise_host: str | None = None,
    key_order: str = DEFAULT_KEY_ORDER,
    timezone: str = "UTC",
) -> int:
    """CLI entry of ``python -m leadscore sandbox serve``: returns the process exit code (0 ok, 2 bad sandbox)."""
    started = time.monotonic()
    try:
        serve_forever(
            Path(data_dir),
            web_port,
            sftp_port,
            host=host,
            advertise_host=advertise_host,
            key_order=key_order,
            timezone=timezone,
        )
    except SandboxError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"error: cannot listen on {host} ports {web_port}/{sftp_port}: {exc}", file=sys.stderr)
        return 2
    print(f"sandbox stopped after {time.monotonic() - started:.0f} s")
    return 0
