"""Real `python -m leadscore ...` processes against the session's sandbox, for the crash, umask and concurrency tests.

Every process starts with umask 022 (a common default: the product itself must make its files owner-only) and may be
armed with a kill point (``LEADSCORE_KILL_POINT``) or a pause point (``LEADSCORE_PAUSE_POINT``), see
``leadscore.faults``. The sandbox runs in the test process, so the test polls Slate's importer between two runs.

``CliHome`` is one LEADSCORE_HOME with the two sandbox weeks extracted, a champion trained and the last week scored
(dry run: nothing delivered); each test works on a copy of it.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from tests.reliability.helpers import sftp_conn

ROOT = Path(__file__).resolve().parents[2]
WEEK1_END = date(2026, 11, 16)
WEEK2_END = date(2026, 11, 23)
WAIT_S = 240  # a bound for one CLI step; reaching it is a failure of the step, never how a step is meant to end
UMASK = 0o022


def cli_env(home: Path, sandbox: Any, **extra: str) -> dict[str, str]:
    """The environment of one CLI process: this home, the sandbox's connections, a small configuration."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LEADSCORE_", "AIRFLOW_CONN_", "AIRFLOW_HOME"))}
    env.update(
        PYTHONPATH=str(ROOT / "include"),
        LEADSCORE_HOME=str(home),
        AIRFLOW_HOME=str(home / "airflow"),
        AIRFLOW_CONN_SLATE_API=sandbox.connection_uris()["AIRFLOW_CONN_SLATE_API"],
        AIRFLOW_CONN_SLATE_SFTP=json.dumps(sftp_conn(sandbox)),
        LEADSCORE_PAGE_SIZE="2000",
        LEADSCORE_CHUNK_ROWS="200",
        LEADSCORE_MIN_SCORED_LEADS="50",
        LEADSCORE_LANDMARK_DAYS="0,14",
        LEADSCORE_TRAINING_WINDOW_DAYS="365",
        LEADSCORE_MIN_TRAINING_LEADS="500",  # the small sandbox: 970 leads, 65 applications in the window
        LEADSCORE_MIN_TRAINING_APPLICATIONS="40",
        LEADSCORE_DELIVERY_RETRIES="2",
        LEADSCORE_SFTP_TIMEOUT="30",
        MPLBACKEND="Agg",
        OMP_NUM_THREADS="1",
        OPENBLAS_NUM_THREADS="1",
        MKL_NUM_THREADS="1",
    )
    env.update(extra)
    return env


def start(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen:
    """Start ``python -m leadscore <args>`` under umask 022, its output going to ``log``."""
    log.parent.mkdir(parents=True, exist_ok=True)
    out = open(log, "ab")  # noqa: SIM115 (closed when the process is waited for, see finish)
    proc = subprocess.Popen(
        [sys.executable, "-m", "leadscore", *args],
        env=env,
        cwd=ROOT,
        stdout=out,
        stderr=subprocess.STDOUT,
        preexec_fn=lambda: os.umask(UMASK),
    )
    proc.log_file = out  # type: ignore[attr-defined]
    proc.log_path = log  # type: ignore[attr-defined]
    return proc


def finish(proc: subprocess.Popen, timeout: float = WAIT_S) -> int:
    """Wait for a started process (killing it past ``timeout``, which fails the test); returns its exit code."""
    try:
        code = proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        raise AssertionError(f"{proc.args} did not end within {timeout} s; log: {proc.log_path}") from None
    finally:
        proc.log_file.close()
    return code


def run(args: list[str], env: dict[str, str], log: Path, expect: int = 0) -> str:
    """Run one CLI step to its end; asserts its exit code (-9 for a process killed at its kill point)."""
    proc = start(args, env, log)
    code = finish(proc)
    text = log.read_text(errors="replace")
    assert code == expect, f"{args} exited {code}, expected {expect}; last output:\n{text[-3000:]}"
    return text


def killed_at(point: str, args: list[str], env: dict[str, str], log: Path) -> str:
    """Run a step armed with a kill point; asserts it died there (SIGKILL) and returns its output."""
    return run(args, {**env, "LEADSCORE_KILL_POINT": point}, log, expect=-signal.SIGKILL)


def wait_for_trace(trace: Path, name: str, proc: subprocess.Popen, timeout: float = WAIT_S) -> None:
    """Wait until ``proc`` has written point ``name`` to its trace file; fails if it ends first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if trace.exists() and any(line.split(" ", 1)[-1] == name for line in trace.read_text().splitlines()):
            return
        if proc.poll() is not None:
            raise AssertionError(f"{proc.args} ended (exit {proc.returncode}) without reaching {name}")
        time.sleep(0.05)
    raise AssertionError(f"{proc.args} did not reach {name} within {timeout} s")


def week_args(step: str, week_end: date = WEEK2_END, *more: str) -> list[str]:
    return [step, "--week-ending", week_end.isoformat(), *more]


def loose_modes(root: Path, skip: tuple[str, ...] = ()) -> list[str]:
    """Files not 0o600 and folders not 0o700 under ``root`` (top-level names in ``skip`` left out)."""
    out = []
    for path in [root, *sorted(root.rglob("*"))]:
        if path.is_symlink() or (path != root and path.relative_to(root).parts[0] in skip):
            continue
        mode = path.stat().st_mode & 0o777
        if mode != (0o700 if path.is_dir() else 0o600):
            out.append(f"{oct(mode)} {path.relative_to(root)}")
    return out


@dataclass
class CliHome:
    """The template home (read-only for tests) and where its step logs went."""

    home: Path
    logs: Path
    loose_modes: list[str]

    def copy(self, dest: Path) -> Path:
        """A private copy of the home for one test (MLflow's artifacts stay shared and are only read)."""
        shutil.copytree(self.home, dest, symlinks=True)
        return dest


def build_cli_home(sandbox: Any, base: Path, reuse: str | None = None) -> CliHome:
    """Extract both weeks, train, and score the last week (dry run), each as its own CLI process under umask 022.

    ``reuse``: a folder to build in once and reuse on later test sessions (the home holds no sandbox credential).
    """
    if reuse:
        base = Path(reuse)
        if (base / "home" / "scores").is_dir():
            return CliHome(home=base / "home", logs=base / "logs", loose_modes=loose_modes(base / "home"))
    home, logs = base / "home", base / "logs"
    env = cli_env(home, sandbox)
    run(week_args("extract", WEEK1_END), env, logs / "extract1.log")
    run(week_args("extract", WEEK2_END), env, logs / "extract2.log")
    run(["train", "--as-of", WEEK2_END.isoformat()], env, logs / "train.log")
    run(week_args("score", WEEK2_END, "--dry-run"), env, logs / "score.log")
    return CliHome(home=home, logs=logs, loose_modes=loose_modes(home))
