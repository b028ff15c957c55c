"""End to end: the three real DAGs, run with `dag.test()` against the sandbox's web service, SFTP and importer.

One module-scoped timeline (weeks ending 2026-11-16 and 2026-11-23 of the 3,000-lead session sandbox):
lead_data twice (full history, then incremental), a re-run, lead_training (as of the first week the backfill below
reaches: a week before the first champion cannot be scored), lead_inference, a re-run of the same week, and a backfill
of three earlier weeks. Each test checks one promise of issues 3-5 on the files and the sandbox.
"""

from __future__ import annotations

import hashlib
import json
import os
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pytest

from tests.fixtures_sandbox import reset_sandbox

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
WEEK1_END = datetime(2026, 11, 16, tzinfo=UTC)
WEEK2_END = datetime(2026, 11, 23, tzinfo=UTC)
BACKFILL_ENDS = [
    datetime(2026, 10, 26, tzinfo=UTC),
    datetime(2026, 11, 2, tzinfo=UTC),
    datetime(2026, 11, 9, tzinfo=UTC),
]


@pytest.fixture(scope="module")
def env(sandbox_session, tmp_path_factory):
    """LEADSCORE_HOME for this module, the sandbox's connections, small chunks, and Airflow's metadata tables."""
    home = tmp_path_factory.mktemp("e2e-home")
    reset_sandbox(sandbox_session)
    mp = pytest.MonkeyPatch()
    mp.setenv("LEADSCORE_HOME", str(home))
    mp.setenv("LEADSCORE_CHUNK_ROWS", "300")
    mp.setenv("LEADSCORE_PAGE_SIZE", "2000")
    mp.setenv("LEADSCORE_MIN_SCORED_LEADS", "50")
    mp.setenv("LEADSCORE_START_DATE", "2026-10-05")  # the backfill below reaches back to the week ending 2026-10-26
    for name, value in sandbox_session.connection_uris().items():
        mp.setenv(name, value)
    from airflow.utils import db

    db.initdb()
    yield {"home": home, "sandbox": sandbox_session}
    mp.undo()
    reset_sandbox(sandbox_session)


@pytest.fixture(scope="module")
def dags(env):
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(ROOT / "dags"))
    assert bag.import_errors == {}
    return bag.dags


def run(dag, logical_date: datetime, conf: dict | None = None) -> dict[str, str]:
    """Run the DAG for the interval ending at ``logical_date``; returns each task's final state."""
    dr = dag.test(logical_date=logical_date, run_conf=conf or {})
    return {ti.task_id: str(ti.state) for ti in dr.get_task_instances()}


def digest(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.glob("*.parquet"))}


def extracts(home: Path, query: str) -> Path:
    return home / "extracts" / query


def test_first_week_loads_the_whole_history(env, dags):
    states = run(dags["lead_data"], WEEK1_END)
    assert set(states.values()) == {"success"}, states
    log = env["sandbox"].web.request_log()
    first = next(e for e in log if e["query"] == "interactions")
    assert not first["params"].get("since"), "first run must pull the whole history"
    assert first["params"]["until"].startswith("2026-11-16")
    assert len(list(extracts(env["home"], "leads").glob("*.parquet"))) == 1


def test_second_week_pulls_only_its_interval(env, dags):
    env["sandbox"].web.clear_request_log()
    states = run(dags["lead_data"], WEEK2_END)
    assert set(states.values()) == {"success"}, states
    log = env["sandbox"].web.request_log()
    assert log and all(e["params"]["since"].startswith("2026-11-16") for e in log)
    assert all(e["params"]["until"].startswith("2026-11-23") for e in log)
    week = pd.read_parquet(extracts(env["home"], "interactions") / "20261116_20261123.parquet")
    assert len(week) > 0
    assert week["occurred"].min() >= pd.Timestamp("2026-11-16") and week["occurred"].max() < pd.Timestamp("2026-11-23")


def test_rerun_of_a_week_gives_identical_files(env, dags):
    before = {q: digest(extracts(env["home"], q)) for q in ("leads", "interactions")}
    states = run(dags["lead_data"], WEEK2_END)
    assert set(states.values()) == {"success"}, states
    after = {q: digest(extracts(env["home"], q)) for q in ("leads", "interactions")}
    assert before == after


def test_union_of_weekly_extracts_equals_one_full_pull(env, tmp_path):
    from leadscore.airflow_adapter import slate_api_config
    from leadscore.data.extract import extract_interval
    from leadscore.data.store import ExtractStore
    from leadscore.settings import load_settings
    from leadscore.slate.client import SlateClient

    settings = load_settings().replace(home=tmp_path / "full")
    full = ExtractStore(settings.extracts_dir)
    with SlateClient(slate_api_config()) as client:
        extract_interval(
            client, full, settings, pd.Timestamp("2026-11-16"), pd.Timestamp("2026-11-23"), full_history=True
        )
    weekly = ExtractStore(Path(env["home"]) / "extracts")
    for query, key in (("leads", "person_guid"), ("interactions", "interaction_guid")):
        a = weekly.read_all(query).sort_values(key).reset_index(drop=True)
        b = full.read_all(query).sort_values(key).reset_index(drop=True)
        pd.testing.assert_frame_equal(a, b, check_dtype=False)


def test_training_registers_a_champion(env, dags):
    states = run(dags["lead_training"], WEEK2_END, conf={"as_of": f"{BACKFILL_ENDS[0]:%Y-%m-%d}"})
    assert states["train_and_register"] == "success", states
    summary = json.loads((env["home"] / "runs" / "training" / "latest.json").read_text())
    assert summary["gate"] == "passed" and summary["version"] == "1"
    assert summary["holdout"]["cox"]["auc"] > 0.7
    from leadscore.model.registry import load_champion
    from leadscore.settings import load_settings

    champion = load_champion(load_settings())
    assert champion.version == "1" and champion.model.reference_scores.size > 0


def test_inference_delivers_every_chunk_and_slate_imports_them(env, dags):
    sandbox = env["sandbox"]
    states = run(dags["lead_inference"], WEEK2_END)
    assert states["score"] == "success" and states["deliver"] == "success", states
    manifest = json.loads((env["home"] / "scores" / "20261123" / "manifest.json").read_text())
    assert len(manifest["files"]) >= 2, "chunk_rows=300 should give several chunks"
    remote = sandbox.paths.sftp_root / "incoming" / "lead_scores"
    assert not list(remote.glob("*.part")), "a .part file was left on the server"
    results = sandbox.importer.poll()
    imported = {r.file: r.rows for r in results}
    assert set(imported) == {f["name"] for f in manifest["files"]}
    assert sum(imported.values()) == manifest["rows"]
    assert all(not r.file.endswith(".part") for r in results)
    fields = sandbox.importer.fields()
    assert fields["lead_tier"].isin(["A", "B", "C", "D"]).all()


def test_rerun_of_the_same_week_changes_nothing_in_slate(env, dags):
    sandbox = env["sandbox"]
    fields_before = sandbox.importer.fields().sort_values("person_guid").reset_index(drop=True)
    states = run(dags["lead_inference"], WEEK2_END)
    assert states["deliver"] == "success", states
    delivery = json.loads((env["home"] / "runs" / "delivery" / "20261116_20261123.json").read_text())
    assert delivery["sent"] == 0 and delivery["skipped"] >= 2
    assert sandbox.importer.poll() == []
    pd.testing.assert_frame_equal(
        fields_before, sandbox.importer.fields().sort_values("person_guid").reset_index(drop=True)
    )


def test_backfill_of_three_missed_weeks(env, dags):
    for end in BACKFILL_ENDS:
        assert set(run(dags["lead_data"], end).values()) == {"success"}
        states = run(dags["lead_inference"], end)
        assert states["score"] == "success" and states["deliver"] == "success", (end, states)
    for end in BACKFILL_ENDS:
        folder = env["home"] / "scores" / f"{end:%Y%m%d}"
        manifest = json.loads((folder / "manifest.json").read_text())
        assert manifest["scored_on"] == f"{end:%Y-%m-%d}"
        assert all(f["name"].startswith(f"lead_scores_{end:%Y%m%d}_") for f in manifest["files"])
        scores = pd.read_parquet(folder / "scores.parquet")
        assert (scores["scored_on"].astype(str) == f"{end:%Y-%m-%d}").all()
    imported = {r.file for r in env["sandbox"].importer.poll()}
    assert {f"{end:%Y%m%d}" for end in BACKFILL_ENDS} == {name.split("_")[2] for name in imported}


def test_files_under_home_are_owner_only(env):
    loose = []
    for path in Path(env["home"]).rglob("*"):
        mode = path.stat().st_mode & 0o777
        if path.is_file() and mode & 0o077 and "airflow" not in path.parts:
            loose.append((str(path), oct(mode)))
    assert not loose, loose[:10]


def test_no_secret_in_outputs(env):
    creds = env["sandbox"].credentials
    secrets = [creds.service_password, creds.sftp_password, *(q.h for q in creds.queries.values())]
    assert all(len(s) >= 8 for s in secrets)
    for path in Path(env["home"]).rglob("*"):
        if path.is_file() and path.suffix in {".json", ".csv", ".html", ".md", ".log", ".txt", ".yaml"}:
            text = path.read_text(errors="replace")
            leaked = [s[:4] + "…" for s in secrets if s in text]
            assert not leaked, f"secret found in {path}"
    assert os.environ["LEADSCORE_HOME"] == str(env["home"])
