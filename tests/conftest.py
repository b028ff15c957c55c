"""Test session setup: an isolated LEADSCORE_HOME and AIRFLOW_HOME, set before anything imports Airflow."""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
_SESSION_DIR = Path(tempfile.mkdtemp(prefix="leadscore-tests-"))
os.environ["LEADSCORE_HOME"] = str(_SESSION_DIR / "home")
os.environ["AIRFLOW_HOME"] = str(_SESSION_DIR / "airflow")
os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = str(ROOT / "dags")
os.environ["AIRFLOW__CORE__PLUGINS_FOLDER"] = str(ROOT / "plugins")
os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
os.environ.setdefault("MPLBACKEND", "Agg")
sys.path.insert(0, str(ROOT / "include"))

pytest_plugins = ["tests.fixtures_sandbox"]

# `make test` runs two pytest-xdist workers with --dist loadgroup. The stack tier (one team stack per session) and the
# tests that share the pipeline runs of tests/reliability/conftest.py each stay on one worker, so their session
# fixtures are built once; every other file is its own group, which keeps module fixtures to one build.
_GROUPS = {"stack": "stack", "reliability": "pipeline", "e2e": "pipeline"}


@pytest.hookimpl(tryfirst=True)  # before xdist's own hook turns the marks into the groups it distributes
def pytest_collection_modifyitems(config: object, items: list) -> None:
    for item in items:
        parts = Path(str(item.path)).relative_to(ROOT / "tests").parts
        group = _GROUPS.get(parts[0], "/".join(parts)) if len(parts) > 1 else parts[0]
        item.add_marker(pytest.mark.xdist_group(group))
