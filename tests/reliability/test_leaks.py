"""Promise 5 after a real Airflow run: nothing leaks into any file Airflow, MLflow or LeadScore leaves behind.

The three DAGs run as `airflow dags test` processes (the path `make demo` and backfills take) against the sandbox,
under umask 022, with Airflow's home inside LEADSCORE_HOME. Then every file under the home is scanned, raw and
decoded (each SQLite database as its `.dump`: Airflow's metadata database and MLflow's store; each Parquet file as
text), for every secret in plain, URL-encoded and base64 forms, including the Basic-auth header
``base64(user:password)``; task logs are among the files. Reports and the weekly HTML must carry no GUIDs and no
e-mail address, and the files our tasks create must be owner-only although the processes started with umask 022.
"""

from __future__ import annotations

import base64
import os
import re
import sqlite3
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote, quote_plus

import pandas as pd
import pytest

from leadscore.local_run import airflow_env, dags_test, ensure_airflow_db
from leadscore.settings import Settings
from tests.fixtures_sandbox import reset_sandbox
from tests.reliability.helpers import sandbox_secrets
from tests.reliability.procs import loose_modes

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

WEEK_END = datetime(2026, 11, 23)
GUID = re.compile(rb"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")


@dataclass
class DagRun:
    home: Path
    sandbox: Any
    imported: list[Any]


@pytest.fixture(scope="module")
def dag_run(sandbox_session: Any, tmp_path_factory: pytest.TempPathFactory) -> DagRun:
    reset_sandbox(sandbox_session)
    home = tmp_path_factory.mktemp("dagrun") / "home"
    home.mkdir(mode=0o700)  # made here, by the test (its log folder goes inside)
    env = airflow_env(Settings(home=home), sandbox_session.connection_uris())
    env.update(
        AIRFLOW_HOME=str(home / "airflow"),
        LEADSCORE_START_DATE="2026-11-09",
        LEADSCORE_PAGE_SIZE="2000",
        LEADSCORE_CHUNK_ROWS="300",
        LEADSCORE_MIN_SCORED_LEADS="50",
        LEADSCORE_LANDMARK_DAYS="0,14",
        LEADSCORE_TRAINING_WINDOW_DAYS="365",
        OMP_NUM_THREADS="1",
    )
    logs = home / "task-logs"  # inside the home: scanned like everything else
    old = os.umask(0o022)  # inherited by the Airflow processes: the task entry must tighten it itself
    try:
        ensure_airflow_db(env, logs)
        for dag in ("lead_data", "lead_training", "lead_inference"):
            dags_test(dag, WEEK_END, env, logs)
    finally:
        os.umask(old)
    return DagRun(home=home, sandbox=sandbox_session, imported=sandbox_session.importer.poll())


def secret_forms(sandbox: Any) -> dict[str, bytes]:
    """Every secret of the sandbox in each form it could take on the way out: label -> bytes."""
    creds = sandbox.credentials
    out: dict[str, bytes] = {}
    for i, secret in enumerate(sandbox_secrets(sandbox)):
        for form, text in (("plain", secret), ("url", quote(secret, safe="")), ("url+", quote_plus(secret))):
            out[f"secret{i}-{form}"] = text.encode()
        out[f"secret{i}-base64"] = base64.b64encode(secret.encode())
    for label, user, password in (
        ("web", creds.service_user, creds.service_password),
        ("sftp", creds.sftp_user, creds.sftp_password),
    ):
        header = base64.b64encode(f"{user}:{password}".encode())
        out[f"basic-auth-{label}"] = header
        out[f"basic-auth-{label}-url"] = quote(header.decode(), safe="").encode()
    return out


def readable(path: Path) -> bytes:
    """The file's bytes plus a decoded text form: a SQLite database's `.dump`, a Parquet file as CSV."""
    data = path.read_bytes()
    if data.startswith(b"SQLite format 3"):
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
            data += "\n".join(db.iterdump()).encode("utf-8", errors="replace")
    elif path.suffix == ".parquet":
        data += pd.read_parquet(path).to_csv().encode()
    return data


def test_the_dags_really_ran(dag_run: DagRun) -> None:
    assert len(dag_run.imported) >= 2 and all(not r.errors for r in dag_run.imported)
    names = {p.name for p in dag_run.home.rglob("*") if p.is_file()}
    assert "airflow.db" in names and "mlflow.db" in names and any(n.startswith("weekly_") for n in names)
    logs = "".join(p.read_text(errors="replace") for p in (dag_run.home / "task-logs").glob("lead_*.log"))
    assert "extract" in logs and "deliver" in logs  # task logs of the runs are among the scanned files


def test_no_secret_in_any_form_in_task_logs_metadata_db_mlflow_or_any_artifact(dag_run: DagRun) -> None:
    forms = secret_forms(dag_run.sandbox)
    files = [p for p in sorted(dag_run.home.rglob("*")) if p.is_file()]
    assert len(files) > 50
    dumps = [p for p in files if p.read_bytes()[:15] == b"SQLite format 3"]
    assert {p.name for p in dumps} >= {"airflow.db", "mlflow.db"}
    hits = [(str(p.relative_to(dag_run.home)), label) for p in files for label, f in forms.items() if f in readable(p)]
    assert hits == []


def test_reports_and_the_weekly_html_carry_no_guid_or_email(dag_run: DagRun) -> None:
    reports = [p for p in sorted((dag_run.home / "reports").rglob("*")) if p.is_file()]
    assert any(p.name.startswith("weekly_") and p.suffix == ".html" for p in reports)
    emails = pd.read_parquet(dag_run.sandbox.paths.leads, columns=["email"])["email"].dropna().astype(str)
    needles = [e.encode() for e in emails if "@" in e]
    assert len(needles) > 1000
    for path in reports:
        data = readable(path)
        assert GUID.search(data) is None, f"{path.name} holds a GUID: {GUID.search(data).group()!r}"
        assert not any(n in data for n in needles), path.name


def test_files_of_the_airflow_tasks_are_owner_only_under_umask_022(dag_run: DagRun) -> None:
    # Airflow's own files (its home) and this test's log files are not the tasks'; everything else is.
    loose = loose_modes(dag_run.home, skip=("airflow", "task-logs"))
    assert loose == [], "\n".join(loose[:20])
