"""Test session setup: an isolated LEADSCORE_HOME and AIRFLOW_HOME, set before anything imports Airflow."""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

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
