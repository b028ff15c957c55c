"""Serve a generated sandbox directory on 127.0.0.1 until SIGTERM, without the background importer.

Usage: ``python bench/serve_sandbox.py DIR WEB_PORT SFTP_PORT``. Prints the connection strings (``describe``).
"""

from __future__ import annotations

import signal
import sys
import threading
from pathlib import Path


def main(argv: list[str]) -> int:
    """Start the sandbox over ``argv[0]`` on the given ports and block until SIGTERM or SIGINT."""
    from leadscore.sandbox.serve import describe, start_sandbox

    data_dir, web_port, sftp_port = Path(argv[0]), int(argv[1]), int(argv[2])
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    with start_sandbox(data_dir, web_port, sftp_port, importer_interval=None) as handle:
        describe(handle, sys.stdout)
        stop.wait()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
