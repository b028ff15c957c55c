"""Named kill points: places where a crash test kills the process for real (SIGKILL), armed by an environment variable.

The product calls :func:`point` at the moments a crash hurts most (between the two renames of an extract commit,
after an upload before its rename, after a rename before its ledger line, in the middle of a report). Unarmed (the
normal case) a call does nothing. ``LEADSCORE_KILL_POINT=<name>`` kills the process at the first hit of ``<name>``;
``<name>:<n>`` at its n-th hit (e.g. the second chunk). Crash tests run ``python -m leadscore ...`` with it set and
then check that the next run recovers: no monkeypatching, the real process dies where a power cut would stop it.

``LEADSCORE_FAULT_TRACE=<file>`` appends the name of every point reached to that file (tests use it to see that a
process reached a point, e.g. that it is waiting for a lock held by another process). ``LEADSCORE_PAUSE_POINT=<name>``
with ``LEADSCORE_PAUSE_UNTIL=<file>`` holds the process at the first hit of ``<name>`` until that file exists (at most
PAUSE_MAX_S), so a test can start a second process while the first one is exactly there (e.g. holding a lock).

Names in use (a test fails when one of them is no longer reached): see :data:`POINTS`.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

KILL_VAR = "LEADSCORE_KILL_POINT"
TRACE_VAR = "LEADSCORE_FAULT_TRACE"
PAUSE_VAR = "LEADSCORE_PAUSE_POINT"
PAUSE_UNTIL_VAR = "LEADSCORE_PAUSE_UNTIL"
PAUSE_MAX_S = 300.0

POINTS: dict[str, str] = {
    "extract.commit.between_replaces": "an interval's commit has moved its first file into place, not the others",
    "deliver.after_upload": "a chunk's .part is uploaded and its size checked, not yet renamed",
    "deliver.after_rename": "a chunk is renamed to its final name and checked, not yet in the ledger",
    "report.write.mid": "half of the weekly report's bytes are in its temp file",
    "lock.waiting": "a run found the per-week lock held by another run and waits for it",
}

_hits: dict[str, int] = {}
_paused: set[str] = set()


def point(name: str) -> None:
    """Mark that execution reached the named point: kill the process here when armed for it, else do nothing."""
    trace = os.environ.get(TRACE_VAR)
    if trace:
        with open(trace, "a", encoding="utf-8") as fh:
            fh.write(f"{os.getpid()} {name}\n")
    if os.environ.get(PAUSE_VAR) == name and name not in _paused:
        _paused.add(name)
        release = Path(os.environ.get(PAUSE_UNTIL_VAR) or "")
        deadline = time.monotonic() + PAUSE_MAX_S
        while not release.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
    armed = os.environ.get(KILL_VAR)
    if not armed:
        return
    target, _, nth = armed.partition(":")
    if target != name:
        return
    _hits[name] = _hits.get(name, 0) + 1
    if _hits[name] >= int(nth or 1):
        os.kill(os.getpid(), signal.SIGKILL)
