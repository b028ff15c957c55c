"""`make airflow PORT=N`: a task runs on a port other than 8080, and SIGTERM or Ctrl-C stops every process it started."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
from pathlib import Path

import pytest

from leadscore.processes import stop_tree
from tests.stack.harness import ApiClient, environ_without_airflow, free_port, port_open

pytestmark = [pytest.mark.stack, pytest.mark.slow, pytest.mark.timeout(1200)]
ROOT = Path(__file__).resolve().parents[2]


def _log_text(path: Path) -> str:
    return path.read_text(errors="replace") if path.exists() else ""


def _wait(what: str, probe, timeout: float, log: Path, proc: subprocess.Popen):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"make airflow exited ({proc.returncode}) while waiting for {what}:\n{_log_text(log)[-4000:]}")
        try:
            value = probe()
            if value:
                return value
        except (OSError, ValueError, KeyError):
            pass
        time.sleep(2)
    pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}:\n{_log_text(log)[-4000:]}")


def _start(tmp_path: Path) -> tuple[subprocess.Popen, int, Path, Path]:
    port = free_port()
    home = tmp_path / "home"
    env = environ_without_airflow()
    # One week to catch up: lead_data's first scheduled run is the task that must reach the execution API.
    env.update({"LEADSCORE_HOME": str(home), "LEADSCORE_SANDBOX_LEADS": "500", "LEADSCORE_START_DATE": _weeks_back(1)})
    log = tmp_path / "make-airflow.log"
    with open(log, "wb") as fh:
        # Its own process group, like a shell job: Ctrl-C in a terminal signals the whole group.
        proc = subprocess.Popen(
            ["make", "--no-print-directory", "airflow", f"PORT={port}", "SANDBOX_WEB_PORT=0", "SANDBOX_SFTP_PORT=0"],
            cwd=ROOT,
            env=env,
            stdout=fh,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    return proc, port, home, log


def _weeks_back(weeks: int) -> str:
    from datetime import UTC, datetime, timedelta

    today = datetime.now(UTC).date()
    return (today - timedelta(days=today.weekday(), weeks=weeks)).isoformat()


def _tree(pid: int) -> list:
    import psutil

    try:
        root = psutil.Process(pid)
        return [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


def _sandbox_ports(log: Path) -> list[int]:
    m = re.search(r"sandbox Slate: web service http://127\.0\.0\.1:(\d+), SFTP 127\.0\.0\.1:(\d+)", _log_text(log))
    return [int(m.group(1)), int(m.group(2))] if m else []


def _stop_and_check(proc: subprocess.Popen, sig: int, to_group: bool, ports: list[int], log: Path) -> None:
    import psutil

    tree = _tree(proc.pid)
    assert len(tree) > 5, f"expected make, leadscore and Airflow's components: {[p.pid for p in tree]}"
    if to_group:
        os.killpg(proc.pid, sig)
    else:
        proc.send_signal(sig)
    try:
        proc.wait(timeout=90)
    except subprocess.TimeoutExpired:
        pytest.fail(f"make airflow did not stop within 90 s of signal {sig}:\n{_log_text(log)[-3000:]}")
    _, alive = psutil.wait_procs(tree, timeout=30)
    alive = [p for p in alive if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
    try:
        left = [" ".join(p.cmdline()[:4]) for p in alive]
    except psutil.Error:
        left = [str(p.pid) for p in alive]
    for p in alive:  # leave nothing behind even when the test fails
        p.kill()
    assert not left, f"processes left running after signal {sig}: {left}"
    busy = [p for p in ports if port_open(p)]
    assert not busy, f"ports still listening: {busy}"


def test_a_task_runs_on_any_port_and_sigterm_stops_every_process(tmp_path: Path) -> None:
    proc, port, home, log = _start(tmp_path)
    try:
        _wait("the api-server", lambda: port_open(port), 300, log, proc)
        pw_file = home / "airflow" / "simple_auth_manager_passwords.json.generated"
        password = _wait(
            "the admin password file", lambda: json.loads(pw_file.read_text()).get("admin"), 120, log, proc
        )
        api = ApiClient(f"http://127.0.0.1:{port}", "admin", password)
        _wait("lead_data parsed", lambda: api.request("GET", "/dags/lead_data")[0] == 200, 240, log, proc)
        # Unpaused, lead_data runs its one caught-up week: a task that must reach the execution API on `port`.
        status, body = api.request("PATCH", "/dags/lead_data", {"is_paused": False})
        assert status == 200, (status, body)

        def finished() -> dict | None:
            runs = [r for r in api.dag_runs("lead_data") if r["state"] in ("success", "failed")]
            return runs[0] if runs else None

        first = _wait("lead_data's first run to finish", finished, 400, log, proc)
        state, run_id = first["state"], first["dag_run_id"]
        tis = api.task_instances("lead_data", run_id)
        assert state == "success", f"tasks on port {port}: {[(t['task_id'], t['state']) for t in tis]}"
        _stop_and_check(proc, signal.SIGTERM, to_group=False, ports=[port, *_sandbox_ports(log)], log=log)
    finally:
        stop_tree(proc, timeout=30)  # whatever the test's outcome, nothing stays behind


def test_ctrl_c_stops_every_process(tmp_path: Path) -> None:
    proc, port, _, log = _start(tmp_path)
    try:
        _wait("the api-server", lambda: port_open(port), 300, log, proc)
        _wait("the sandbox's ports", lambda: _sandbox_ports(log), 60, log, proc)
        _stop_and_check(proc, signal.SIGINT, to_group=True, ports=[port, *_sandbox_ports(log)], log=log)
    finally:
        stop_tree(proc, timeout=30)  # whatever the test's outcome, nothing stays behind
