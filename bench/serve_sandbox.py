"""Serve a generated sandbox directory on 127.0.0.1 until SIGTERM, without the background importer.

Usage: ``python bench/serve_sandbox.py DIR WEB_PORT SFTP_PORT [--sftp-only]``. Prints the connection strings
(``describe``). ``--sftp-only`` starts the SFTP server alone (the delivery step needs nothing else; the web service
loads every table, ~12.7 GiB at 1M leads) and prints an unusable API connection beside the SFTP one.
"""

from __future__ import annotations

import json
import signal
import sys
import threading
from pathlib import Path


def _sftp_only(data_dir: Path, sftp_port: int, stop: threading.Event) -> None:
    from leadscore.sandbox.config import load_or_create_credentials
    from leadscore.sandbox.sftp_server import SandboxSFTPServer

    creds = load_or_create_credentials(data_dir)
    sftp = SandboxSFTPServer(data_dir, creds, "127.0.0.1", sftp_port).start()
    try:
        conn = {
            "conn_type": "sftp",
            "host": "127.0.0.1",
            "port": sftp.port,
            "login": creds.sftp_user,
            "password": creds.sftp_password,
            "extra": {"host_key": sftp.host_key.line, "no_host_key_check": False},
        }
        print('AIRFLOW_CONN_SLATE_API=\'{"conn_type": "http", "host": "unused.invalid"}\'', flush=True)
        print(f"AIRFLOW_CONN_SLATE_SFTP='{json.dumps(conn)}'", flush=True)
        stop.wait()
    finally:
        sftp.stop()


def main(argv: list[str]) -> int:
    """Start the sandbox over ``argv[0]`` on the given ports and block until SIGTERM or SIGINT."""
    from leadscore.sandbox.serve import describe, start_sandbox

    data_dir, web_port, sftp_port = Path(argv[0]), int(argv[1]), int(argv[2])
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    if "--sftp-only" in argv[3:]:
        _sftp_only(data_dir, sftp_port, stop)
        return 0
    with start_sandbox(data_dir, web_port, sftp_port, importer_interval=None) as handle:
        describe(handle, sys.stdout)
        stop.wait()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
