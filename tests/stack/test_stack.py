"""The team stack, used the way it is used: unpause on a fresh home, trigger from the UI, backfill, Celery, alerts.

One session-scoped stack (``conftest.stack_run``), driven only through Airflow's REST API and CLI. The tests run in
file order and build on each other: catch-up first (it makes the champion and the weeks the others re-run), then the
backfill and the Celery week (same champion: nothing to re-send), then a new training and a failing run.
"""

from __future__ import annotations

import hashlib
import json
import socket
import time
import urllib.request
from base64 import b64encode
from collections import Counter
from datetime import timedelta
from pathlib import Path

import pytest

from tests.stack.conftest import DAG_IDS, StackRun, describe_failures, wait_for_runs
from tests.stack.harness import Component

# Generous bounds for a shared 2-core machine; each wait fails earlier with the components' log tails.
pytestmark = [pytest.mark.stack, pytest.mark.slow, pytest.mark.timeout(1800)]

WEEKLY_TASKS = {
    "lead_data": {"extract", "quality_report"},
    "lead_inference": {"wait_for_extract", "wait_for_champion", "score", "deliver", "monitor"},
}


def import_log(run: StackRun) -> list[dict]:
    from leadscore.sandbox.config import SandboxPaths

    path = SandboxPaths(run.sandbox_dir).import_log
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def imported_files(run: StackRun) -> Counter:
    return Counter(entry.get("file") for entry in import_log(run))


def failed_tries(run: StackRun, dag_id: str, run_id: str) -> list[str]:
    """Every task try of the run that did not succeed (a retry leaves its failed try in the history)."""
    from urllib.parse import quote

    bad = []
    for ti in run.api.task_instances(dag_id, run_id):
        tries = run.api.get(f"/dags/{dag_id}/dagRuns/{quote(run_id)}/taskInstances/{ti['task_id']}/tries")
        for t in tries["task_instances"]:
            if t["state"] not in ("success", "skipped", "up_for_reschedule"):
                bad.append(f"{dag_id} {run_id} {ti['task_id']} try {t['try_number']}: {t['state']}")
    return bad


def score_digests(run: StackRun) -> dict[str, str]:
    return {
        str(p.relative_to(run.home)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted((run.home / "scores").rglob("lead_scores_*.csv"))
    }


def extract_digests(run: StackRun) -> dict[str, str]:
    return {
        str(p.relative_to(run.home)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted((run.home / "extracts").rglob("*.parquet"))
    }


def test_unpaused_on_a_fresh_home_catch_up_delivers_every_week_once(stack_run: StackRun) -> None:
    run = stack_run
    started = time.monotonic()
    for dag_id in DAG_IDS:
        status, body = run.api.request("PATCH", f"/dags/{dag_id}", {"is_paused": False})
        assert status == 200 and body["is_paused"] is False, (dag_id, status, body)
    weeks = len(run.week_ends)
    inference = wait_for_runs(run, "lead_inference", weeks, timeout=1500)
    run.extra["catchup_seconds"] = time.monotonic() - started
    data = wait_for_runs(run, "lead_data", weeks, timeout=60)
    training = wait_for_runs(run, "lead_training", 1, timeout=60)
    print(f"\ncatch-up of {weeks} weeks: {run.extra['catchup_seconds']:.0f} s from unpause to the last delivery")

    ends = sorted(r["data_interval_end"][:10] for r in inference)
    assert ends == [w.date().isoformat() for w in run.week_ends], (
        "catch-up must run exactly the weeks since the start date"
    )
    problems = []
    for dag_id, runs in (("lead_data", data), ("lead_training", training), ("lead_inference", inference)):
        for r in runs:
            problems += failed_tries(run, dag_id, r["dag_run_id"])
    assert not problems, "a task try failed on the happy path:\n" + "\n".join(problems)

    sent = []
    for r in inference:
        report = run.api.xcom("lead_inference", r["dag_run_id"], "deliver")
        assert report["sent"] >= 1 and report["skipped"] == 0, report
        sent += report["files_sent"]
    assert len(sent) == len(set(sent)) and len(sent) > weeks, sent  # several chunks a week, each name once

    counts = run.stack.wait(
        "the sandbox importer to take every delivered chunk",
        lambda: c if set(sent) <= set(c := imported_files(run)) else None,
        timeout=120,
    )
    assert {name: counts[name] for name in sent} == dict.fromkeys(sent, 1), "each chunk imported exactly once"
    assert set(counts) == set(sent), f"the importer saw files nobody delivered: {set(counts) - set(sent)}"


def test_backfill_reprocessing_completed_weeks_rewrites_identical_files_and_resends_nothing(
    stack_run: StackRun,
) -> None:
    """`airflow backfill create --reprocess-behavior completed` over the three caught-up weeks."""
    run = stack_run
    extracts, scores = extract_digests(run), score_digests(run)
    imported = imported_files(run)
    assert extracts and scores, "catch-up must have run first"
    first, last = run.week_ends[0] - timedelta(weeks=1), run.week_ends[-1] - timedelta(weeks=1)
    for dag_id in ("lead_data", "lead_inference"):  # in order: inference reads the weeks' extracts
        out = run.airflow_cli(
            "backfill", "create", "--dag-id", dag_id,
            "--from-date", first.date().isoformat(), "--to-date", last.date().isoformat(),
            "--reprocess-behavior", "completed",
        )  # fmt: skip
        runs = wait_for_runs(run, dag_id, len(run.week_ends), timeout=600, run_type="backfill")
        assert sorted(r["data_interval_end"][:10] for r in runs) == [w.date().isoformat() for w in run.week_ends], out
        problems = [p for r in runs for p in failed_tries(run, dag_id, r["dag_run_id"])]
        assert not problems, "\n".join(problems)
    for r in wait_for_runs(run, "lead_inference", len(run.week_ends), timeout=10, run_type="backfill"):
        report = run.api.xcom("lead_inference", r["dag_run_id"], "deliver")
        assert report["sent"] == 0 and report["skipped"] >= 1, f"a re-run re-sent chunks: {report}"
    assert extract_digests(run) == extracts, "re-extracted weeks differ from the first run's files"
    assert score_digests(run) == scores, "re-scored weeks differ from the first run's files"
    from leadscore.sandbox.config import SandboxPaths

    waiting = list((SandboxPaths(run.sandbox_dir).sftp_root / "incoming" / "lead_scores").glob("*"))
    assert waiting == [], f"files were uploaded again: {waiting}"
    assert imported_files(run) == imported, "the importer took files again"


@pytest.fixture(scope="module")
def celery_stack(stack_run: StackRun):
    """The compose file's Celery profile: the scheduler hands tasks to Celery (Redis broker), two workers run them."""
    from tests.stack import compose_stack
    from tests.stack.conftest import airflow_service_env

    run = stack_run
    variables = {**run.variables, "AIRFLOW_EXECUTOR": "CeleryExecutor"}
    config = compose_stack.load(variables)
    run.stack.components.pop("airflow-scheduler").stop()
    logs = run.local.root / "logs"
    env = airflow_service_env(config, "airflow-scheduler", run.local, run.env_file, run.airflow_home)
    assert env["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
    argv = compose_stack.service_command(config, "airflow-scheduler", run.local)
    run.stack.add(Component("airflow-scheduler", argv, env, logs / "airflow-scheduler-celery.log", run.local.root))
    workers = []
    for i in (1, 2):
        name = f"worker{i}"
        env = airflow_service_env(config, "airflow-worker", run.local, run.env_file, run.airflow_home)
        # Two containers have two host names; two workers on one host need a name each.
        argv = [*compose_stack.service_command(config, "airflow-worker", run.local), "--celery-hostname", f"{name}@%h"]
        workers.append(
            run.stack.add(Component(f"airflow-{name}", argv, env, logs / f"airflow-{name}.log", run.local.root))
        )
    health = compose_stack.healthcheck_argv(config, "airflow-worker")
    for i, worker in enumerate(workers, 1):
        argv = [a.replace("celery@${HOSTNAME}", f"worker{i}@{socket.gethostname()}") for a in health]
        run.stack.wait(
            f"{worker.name} to answer the compose healthcheck's celery ping",
            lambda argv=argv, worker=worker: _ping(argv, worker.env, run.local.root),
            timeout=240,
            interval=5,
        )
    yield workers


def _ping(argv: list[str], env: dict[str, str], cwd: Path) -> bool:
    import subprocess

    out = subprocess.run(argv, env=env, cwd=cwd, capture_output=True, text=True, timeout=60)
    return out.returncode == 0 and "pong" in out.stdout


def test_one_week_on_the_celery_executor_with_two_workers(stack_run: StackRun, celery_stack: list[Component]) -> None:
    run = stack_run
    week_end = run.week_ends[-1].date().isoformat()
    run_ids = {}
    for dag_id in ("lead_data", "lead_inference"):
        before = len([r for r in run.api.dag_runs(dag_id) if r["run_type"] == "manual"])
        status, body = run.api.request(
            "POST", f"/dags/{dag_id}/dagRuns", {"logical_date": None, "conf": {"as_of": week_end}}
        )
        assert status == 200, (status, body)
        run_ids[dag_id] = body["dag_run_id"]
        wait_for_runs(run, dag_id, before + 1, timeout=600, run_type="manual")
    tis = []
    for dag_id, run_id in run_ids.items():
        assert not failed_tries(run, dag_id, run_id)
        tis += run.api.task_instances(dag_id, run_id)
    scheduler = run.stack.components["airflow-scheduler"]

    def finished_lines() -> list[str] | None:  # the scheduler logs a task's end just after the run's state changes
        lines = [
            line
            for line in scheduler.log.read_text(errors="replace").splitlines()
            if "TaskInstance Finished" in line and any(r in line for r in run_ids.values())
        ]
        return lines if len(lines) >= len(tis) else None

    finished = run.stack.wait("the scheduler's log of every finished task", finished_lines, timeout=120)
    assert all("executor=CeleryExecutor" in line for line in finished), finished[-5:]
    received = sum(w.log.read_text(errors="replace").count("execute_workload") for w in celery_stack)
    assert received >= len(tis), f"the workers' logs show {received} tasks for {len(tis)} task instances"
    report = run.api.xcom("lead_inference", run_ids["lead_inference"], "deliver")
    assert report["scored_on"] == week_end and report["sent"] == 0, report  # same week, same champion: nothing new


def test_lead_training_triggered_as_the_ui_does_with_typed_params(stack_run: StackRun) -> None:
    """POST dagRuns with `conf`, as the UI's trigger form does: a wrong type is refused, a right one is used."""
    run = stack_run
    status, body = run.api.request(
        "POST", "/dags/lead_training/dagRuns", {"logical_date": None, "conf": {"window_days": "two years"}}
    )
    assert status == 400, f"a string for an integer param must be refused: {status} {body}"
    before = {r["dag_run_id"] for r in run.api.dag_runs("lead_training")}
    status, body = run.api.request(
        "POST", "/dags/lead_training/dagRuns", {"logical_date": None, "conf": {"window_days": 400, "horizon_days": 30}}
    )
    assert status == 200, (status, body)
    assert body["conf"]["window_days"] == 400
    runs = wait_for_runs(run, "lead_training", len(before) + 1, timeout=600)
    manual = next(r for r in runs if r["dag_run_id"] == body["dag_run_id"])
    assert manual["run_type"] == "manual"
    assert not failed_tries(run, "lead_training", manual["dag_run_id"])
    result = run.api.xcom("lead_training", manual["dag_run_id"], "train_and_register")
    mlflow_url = f"http://127.0.0.1:{run.local.ports['mlflow'][5000]}"
    with urllib.request.urlopen(f"{mlflow_url}/api/2.0/mlflow/runs/get?run_id={result['run_id']}", timeout=30) as resp:
        mlflow_run = json.load(resp)["run"]
    params = {p["key"]: p["value"] for p in mlflow_run["data"]["params"]}
    assert params["training_window_days"] == "400", "the typed param must reach the training run"
    # The tracking server stores and serves the artifacts itself (--serve-artifacts), in its volume.
    assert mlflow_run["info"]["artifact_uri"].startswith("mlflow-artifacts:/"), mlflow_run["info"]["artifact_uri"]
    stored = list(run.local.volume("mlflow-artifacts").rglob("model_card.md"))
    assert stored, "no artifact reached the MLflow server's artifact volume"


def test_a_task_that_fails_for_real_calls_the_alert_command_with_json(stack_run: StackRun) -> None:
    """Slate answering an HTML error page fails lead_data's extract on every try; after the last retry the alert
    command receives the failure as JSON on stdin (once, not once per try)."""
    run = stack_run
    host, port, login, password = run.sandbox_credentials()
    faults = f"http://{host}:{port}/_sandbox/faults"
    auth = "Basic " + b64encode(f"{login}:{password}".encode()).decode()

    def call(method: str, body: dict | None = None) -> dict:
        req = urllib.request.Request(faults, data=json.dumps(body).encode() if body else None, method=method)
        req.add_header("Authorization", auth)
        req.add_header("Content-Type", "application/json")
        with urllib.request.urlopen(req, timeout=30) as resp:
            return json.load(resp)

    call("POST", {"kind": "html_error", "count": 1000})
    try:
        status, body = run.api.request(
            "POST",
            "/dags/lead_data/dagRuns",
            {"logical_date": None, "conf": {"as_of": run.week_ends[-1].date().isoformat()}},
        )
        assert status == 200, (status, body)
        run_id = body["dag_run_id"]

        def finished() -> dict | None:
            r = run.api.get(f"/dags/lead_data/dagRuns/{run_id}")
            return r if r["state"] in ("failed", "success") else None

        final = run.stack.wait("the failing lead_data run to end", finished, timeout=600, interval=3)
    finally:
        call("DELETE")
    assert final["state"] == "failed", describe_failures(run, "lead_data", [run_id])
    extract = next(ti for ti in run.api.task_instances("lead_data", run_id) if ti["task_id"] == "extract")
    assert extract["state"] == "failed" and extract["try_number"] == 3, extract  # LEADSCORE_TASK_RETRIES=2 (default)
    alerts = (
        [json.loads(line) for line in run.alerts.read_text().splitlines() if line.strip()]
        if run.alerts.exists()
        else []
    )
    assert len(alerts) == 1, f"one alert for one final failure, not one per try: {alerts}"
    alert = alerts[0]
    assert {k: alert[k] for k in ("dag_id", "task_id", "run_id")} == {
        "dag_id": "lead_data",
        "task_id": "extract",
        "run_id": run_id,
    }
    assert alert["try_number"] == 3
    assert alert["error"] and "html" in alert["error"].lower(), alert
    assert password not in json.dumps(alert), "the alert must not carry a secret"
