"""DAG integrity: every DAG imports cleanly, cheaply, without connection or Variable lookups, and is documented."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DAGS = ROOT / "dags"
EXPECTED = {"lead_data", "lead_training", "lead_inference"}


@pytest.fixture(scope="module")
def dagbag(monkeypatch_module):
    from airflow.dag_processing.dagbag import DagBag
    from airflow.sdk import BaseHook, Variable

    def refuse(*args, **kwargs):
        raise AssertionError("connection or Variable looked up at DAG parse time")

    monkeypatch_module.setattr(BaseHook, "get_connection", refuse)
    monkeypatch_module.setattr(Variable, "get", refuse)
    return DagBag(dag_folder=str(DAGS))


@pytest.fixture(scope="module")
def monkeypatch_module():
    mp = pytest.MonkeyPatch()
    yield mp
    mp.undo()


def test_no_import_errors(dagbag):
    assert dagbag.import_errors == {}


def test_expected_dags_present(dagbag):
    assert set(dagbag.dag_ids) == EXPECTED


@pytest.mark.parametrize("dag_id", sorted(EXPECTED))
def test_dag_has_tags_retries_doc(dagbag, dag_id):
    dag = dagbag.dags[dag_id]
    assert dag.tags, f"{dag_id} has no tags"
    assert "leadscore" in dag.tags
    assert dag.doc_md and len(dag.doc_md) > 100, f"{dag_id} has no doc"
    assert dag.max_active_runs == 1, f"{dag_id} allows concurrent runs of the same DAG"
    for t in dag.tasks:
        assert t.retries >= 1, f"{dag_id}.{t.task_id} has no retries"
        assert t.doc_md or t.doc or (t.python_callable.__doc__ if hasattr(t, "python_callable") else None)


def test_weekly_dags_share_the_timetable(dagbag):
    data, inference = dagbag.dags["lead_data"], dagbag.dags["lead_inference"]
    assert type(data.timetable).__name__ == "CronDataIntervalTimetable"
    assert data.timetable.expression == inference.timetable.expression == "0 0 * * 1"
    assert data.catchup and inference.catchup


_PROBE = r"""
import json, runpy, sys
HEAVY = ("pandas", "lifelines", "mlflow", "sklearn", "requests", "paramiko", "asyncssh", "matplotlib")
import airflow.sdk  # the baseline: whatever Airflow itself loads is not the DAG file's doing
base = {m for m in HEAVY if m in sys.modules}
out = {}
for path in sys.argv[1:]:
    runpy.run_path(path)
    out[path.rsplit("/", 1)[-1]] = sorted({m for m in HEAVY if m in sys.modules} - base)
print("RESULT" + json.dumps(out))
"""


def test_dag_files_import_no_heavy_modules():
    """No DAG file pulls pandas, lifelines, mlflow, sklearn, requests or SSH libraries at parse time."""
    import json

    files = sorted(str(p) for p in DAGS.glob("*.py"))
    env = {**os.environ, "PYTHONPATH": str(ROOT / "include")}
    out = subprocess.run([sys.executable, "-c", _PROBE, *files], capture_output=True, text=True, env=env)
    assert out.returncode == 0, out.stderr[-2000:]
    line = next(x for x in out.stdout.splitlines() if x.startswith("RESULT"))
    result = json.loads(line[len("RESULT") :])
    assert set(result) == {f"{d}.py" for d in EXPECTED}
    assert all(not heavy for heavy in result.values()), f"heavy imports at parse time: {result}"


def test_runs_wait_for_their_inputs_in_the_triggerer(dagbag):
    """A fresh home: training waits for a first extract, inference for its week's extract and a champion, without
    failing and without holding a worker slot (deferrable waits)."""
    from leadscore.waiting import WaitForInputs

    training, inference = dagbag.dags["lead_training"], dagbag.dags["lead_inference"]
    waits = {t.task_id: t for dag in (training, inference) for t in dag.tasks if isinstance(t, WaitForInputs)}
    assert training.get_task("wait_for_extract").check == "any_extract"
    assert inference.get_task("wait_for_extract").check == "week_extract"
    assert inference.get_task("wait_for_champion").check == "champion"
    assert "wait_for_extract" in training.get_task("build_training_set").upstream_task_ids
    assert {"wait_for_extract", "wait_for_champion"} <= inference.get_task("score").upstream_task_ids
    assert all(t.poke_seconds == 30 for t in waits.values())


def test_wait_interval_and_retries_follow_the_settings():
    """LEADSCORE_SENSOR_POKE_SECONDS, LEADSCORE_TASK_RETRIES and LEADSCORE_RETRY_DELAY_SECONDS reach the DAGs."""
    import json

    probe = (
        "import json; from airflow.dag_processing.dagbag import DagBag; "
        f"b = DagBag(dag_folder={str(DAGS)!r}); t = b.dags['lead_inference'].get_task('wait_for_champion'); "
        "s = b.dags['lead_data'].get_task('extract'); "
        "print('RESULT' + json.dumps([t.poke_seconds, s.retries, s.retry_delay.total_seconds()]))"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT / "include"), "LEADSCORE_SENSOR_POKE_SECONDS": "7"}
    env |= {"LEADSCORE_TASK_RETRIES": "4", "LEADSCORE_RETRY_DELAY_SECONDS": "9"}
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=env)
    assert out.returncode == 0, out.stderr[-2000:]
    line = next(x for x in out.stdout.splitlines() if x.startswith("RESULT"))
    assert json.loads(line[len("RESULT") :]) == [7, 4, 9]
