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

# `make test` runs two pytest-xdist workers. The stack tier (one team stack per session) and the tests that share the
# pipeline runs of tests/reliability/conftest.py are each one unit of work for one worker, so their session fixtures
# are built once; every other file is its own unit (its module fixtures built once). The two big units go first, so
# that neither starts last and alone.
_GROUPS = {"stack": "stack", "reliability": "pipeline", "e2e": "pipeline"}


def _group(nodeid: str) -> str:
    """The unit of work of a test: its group, or its file."""
    path = nodeid.split("::", 1)[0]
    parts = path.split("/")
    return _GROUPS.get(parts[1], path) if len(parts) > 2 and parts[0] == "tests" else path


def pytest_xdist_make_scheduler(config: pytest.Config, log: object) -> object:
    from xdist.scheduler import LoadScopeScheduling

    class GroupScheduling(LoadScopeScheduling):
        # xdist's own loadgroup renames node ids, which pytest 9 no longer allows; a scope function is its public way
        def _split_scope(self, nodeid: str) -> str:
            return _group(nodeid)

    return GroupScheduling(config, log)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if os.environ.get("PYTEST_XDIST_WORKER"):
        first = {"stack": 0, "pipeline": 1}
        items.sort(key=lambda item: first.get(_group(item.nodeid), 2))  # stable: file order otherwise
