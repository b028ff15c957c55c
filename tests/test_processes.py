"""leadscore.processes: a stopped tree leaves no process behind, even one that moved to its own process group."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

import psutil
import pytest

from leadscore.processes import descendants, sigterm_as_keyboard_interrupt, stop_tree

# A parent with two children; one of them leaves the parent's process group (as Airflow's task supervisor does).
TREE = """
import os, subprocess, sys, time
subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)"])
subprocess.Popen([sys.executable, "-c", "import os, time; os.setpgid(0, 0); time.sleep(300)"])
time.sleep(300)
"""


def _wait_for_children(pid: int, n: int) -> list[int]:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        kids = descendants(pid)
        if len(kids) >= n:
            return kids
        time.sleep(0.2)
    pytest.fail(f"the test tree did not start {n} children")


def test_stop_tree_ends_every_descendant() -> None:
    proc = subprocess.Popen([sys.executable, "-c", TREE], start_new_session=True)
    kids = _wait_for_children(proc.pid, 2)
    stop_tree(proc, timeout=10)
    assert proc.poll() is not None
    alive = [pid for pid in kids if psutil.pid_exists(pid) and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE]
    assert alive == []


def test_stop_tree_kills_what_ignores_sigterm() -> None:
    code = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(300)"
    proc = subprocess.Popen([sys.executable, "-c", code], start_new_session=True)
    time.sleep(1.0)
    stop_tree(proc, timeout=1)
    assert proc.returncode == -signal.SIGKILL


def test_sigterm_raises_keyboard_interrupt_inside_the_block_only() -> None:
    import os

    previous = signal.getsignal(signal.SIGTERM)
    with pytest.raises(KeyboardInterrupt), sigterm_as_keyboard_interrupt():
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(5)
    assert signal.getsignal(signal.SIGTERM) == previous
