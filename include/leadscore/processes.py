"""Stopping what we started: a child process and every process below it, and SIGTERM handled like Ctrl-C.

Airflow's components start their own children (LocalExecutor workers, task supervisors that put each task in a
process group of its own, API-server workers), so signalling one process group is not enough: the whole tree is
snapshotted first, then asked to stop, then killed if it has not stopped in time.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from collections.abc import Iterator


def descendants(pid: int) -> list[int]:
    """Every live process below ``pid`` (children, grandchildren, ...); [] when ``pid`` is gone."""
    import psutil

    try:
        return [p.pid for p in psutil.Process(pid).children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


def stop_tree(proc: subprocess.Popen, timeout: float = 30.0) -> int | None:
    """Stop ``proc`` and all its descendants: SIGTERM to each (and to ``proc``'s group), SIGKILL after ``timeout``.

    Args:
        proc: a child started by this process (ideally with ``start_new_session=True``).
        timeout: seconds the tree gets to shut down cleanly.
    Returns:
        ``proc``'s exit code.
    """
    import psutil

    tree = [proc.pid, *descendants(proc.pid)]
    procs = []
    for pid in tree:
        with contextlib.suppress(psutil.NoSuchProcess):
            procs.append(psutil.Process(pid))
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGTERM)
    for p in procs:
        with contextlib.suppress(psutil.NoSuchProcess):
            p.terminate()
    _, alive = psutil.wait_procs(procs, timeout=timeout)
    # Children started while the tree was shutting down are caught here too.
    for pid in [p.pid for p in alive] + descendants(proc.pid):
        with contextlib.suppress(psutil.NoSuchProcess):
            psutil.Process(pid).kill()
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    try:
        return proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        return None


@contextlib.contextmanager
def sigterm_as_keyboard_interrupt() -> Iterator[None]:
    """Within the block, SIGTERM raises KeyboardInterrupt, so `kill` cleans up exactly as Ctrl-C does."""

    def _raise(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, _raise)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
