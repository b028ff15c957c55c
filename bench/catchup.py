"""Catch-up on a fresh home, as a new user sees it: `python -m leadscore airflow`, unpause the three DAGs, and time
until the last caught-up week's scores are delivered.

Runs `make airflow`'s command (airflow standalone: SQLite, LocalExecutor, the sandbox Slate) on free ports with a
fresh LEADSCORE_HOME, the demo-sized sandbox (20,000 leads) and LEADSCORE_START_DATE ``--weeks`` weeks back, all
other settings at their defaults. Driven through the REST API like the UI. Writes ``bench/results/catchup.json``:
minutes from unpause to the last delivery (goal: at most 5 on 2 cores), per-DAG run times, failed task tries.

    .venv/bin/python bench/catchup.py [--weeks 4] [--leads 20000]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "include"))

from bench.common import PYTHON, ROOT, free_port, load_average, write_result
from tests.stack.harness import ApiClient, environ_without_airflow, port_open

DAG_IDS = ("lead_data", "lead_training", "lead_inference")
GOAL_MINUTES = 5.0


def _wait(what: str, probe, timeout: float, proc: subprocess.Popen, log: Path):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"airflow exited while waiting for {what}; log {log}")
        try:
            value = probe()
            if value:
                return value
        except (OSError, ValueError, KeyError):
            pass
        time.sleep(2)
    raise SystemExit(f"timed out waiting for {what}; log {log}")


def _ts(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--weeks", type=int, default=4)
    p.add_argument("--leads", type=int, default=20_000)
    p.add_argument("--timeout", type=float, default=1800)
    args = p.parse_args()

    today = datetime.now(UTC).replace(tzinfo=None)
    last_monday = datetime(today.year, today.month, today.day) - timedelta(days=today.weekday())
    start = last_monday - timedelta(weeks=args.weeks)
    work = Path(tempfile.mkdtemp(prefix="bench-catchup-"))
    port = free_port()
    env = environ_without_airflow()
    env.update(
        {
            "PYTHONPATH": str(ROOT / "include"),
            "LEADSCORE_HOME": str(work / "home"),
            "LEADSCORE_SANDBOX_LEADS": str(args.leads),
            "LEADSCORE_START_DATE": start.date().isoformat(),
        }
    )
    log = work / "airflow.log"
    argv = [PYTHON, "-m", "leadscore", "airflow", "--port", str(port), "--sandbox-web-port", "0"]
    argv += ["--sandbox-sftp-port", "0"]
    with open(log, "wb") as fh:
        proc = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=fh, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        _wait("the api-server", lambda: port_open(port), 900, proc, log)
        pw_file = work / "home" / "airflow" / "simple_auth_manager_passwords.json.generated"
        password = _wait("the admin password", lambda: json.loads(pw_file.read_text()).get("admin"), 300, proc, log)
        api = ApiClient(f"http://127.0.0.1:{port}", "admin", password)
        _wait(
            "the DAGs parsed", lambda: all(api.request("GET", f"/dags/{d}")[0] == 200 for d in DAG_IDS), 300, proc, log
        )
        load_before = load_average()
        unpaused = datetime.now(UTC)
        t0 = time.monotonic()
        for dag_id in DAG_IDS:
            status, body = api.request("PATCH", f"/dags/{dag_id}", {"is_paused": False})
            assert status == 200, (dag_id, status, body)

        def done():
            runs = api.dag_runs("lead_inference")
            failed = [r["dag_run_id"] for r in runs if r["state"] == "failed"]
            if failed:
                raise SystemExit(f"lead_inference runs failed: {failed}; log {log}")
            ok = [r for r in runs if r["state"] == "success"]
            return ok if len(ok) >= args.weeks else None

        inference = _wait("every caught-up week delivered", done, args.timeout, proc, log)
        wall = time.monotonic() - t0
        last_end = max(_ts(r["end_date"]) for r in inference)
        runs = {d: api.dag_runs(d) for d in DAG_IDS}
        failed_tries = 0
        for dag_id, dag_runs in runs.items():
            for r in dag_runs:
                for ti in api.task_instances(dag_id, r["dag_run_id"]):
                    failed_tries += max(0, int(ti["try_number"]) - 1) + (ti["state"] == "failed")
        minutes = (last_end - unpaused).total_seconds() / 60
        result = {
            "leads": args.leads,
            "weeks": args.weeks,
            "start_date": start.date().isoformat(),
            "minutes_unpause_to_last_delivery": round(minutes, 2),
            "wall_seconds_until_seen": round(wall, 1),
            "goal_minutes": GOAL_MINUTES,
            "failed_task_tries": failed_tries,
            "load_average_before": load_before,
            "load_average_after": load_average(),
            "runs": {
                d: [
                    {
                        "run_id": r["dag_run_id"],
                        "state": r["state"],
                        "minutes": round((_ts(r["end_date"]) - _ts(r["start_date"])).total_seconds() / 60, 2),
                    }
                    for r in dag_runs
                    if r.get("end_date") and r.get("start_date")
                ]
                for d, dag_runs in runs.items()
            },
        }
        summary = (
            f"{minutes:.1f} min from unpause to the last of {args.weeks} caught-up weeks delivered "
            f"({args.leads:,} leads; goal <= {GOAL_MINUTES:g}); {failed_tries} failed task tries"
        )
        write_result("catchup", result, summary)
        return 0 if failed_tries == 0 else 1
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=90)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)


if __name__ == "__main__":
    sys.exit(main())
