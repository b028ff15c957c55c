"""One real pipeline run against the sandbox, shared by the model, security and concurrency tests.

Extract two weeks through the web service, build a small landmark training set, train and register (the gate
promotes version 1), score the last week and deliver it over SFTP; the importer picks the files up. Run under umask
0o022 (a common default) with every log record collected, so the tests can check file modes and grep for secrets.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from threadpoolctl import threadpool_limits

from leadscore.files import owner_only_umask
from leadscore.intervals import Interval
from leadscore.settings import Settings
from tests.reliability.helpers import LogCollector, sandbox_config, sftp_conn

WEEKS = (
    Interval(datetime(2026, 11, 9), datetime(2026, 11, 16)),
    Interval(datetime(2026, 11, 16), datetime(2026, 11, 23)),
)


@dataclass
class PipelineRun:
    """What the shared pipeline run produced."""

    settings: Settings
    sandbox: Any
    extracts: list[dict]
    built: dict
    training: dict
    scored: dict
    delivered: dict
    imported: list[Any]
    logs: str
    result: Any = None  # the TrainingResult of the run (captured from the real train_and_evaluate)
    sftp_env: dict[str, str] = field(default_factory=dict)
    loose_modes: list[str] = field(default_factory=list)  # taken right after the run, before other tests add files


@pytest.fixture(scope="session")
def pipeline(sandbox_session: Any, tmp_path_factory: pytest.TempPathFactory) -> PipelineRun:
    from leadscore.model import train as train_module
    from leadscore.tasks import data, inference, training
    from tests.fixtures_sandbox import reset_sandbox

    reset_sandbox(sandbox_session)
    home: Path = tmp_path_factory.mktemp("pipeline") / "home"
    settings = Settings(
        home=home,
        page_size=200,
        landmark_days=(0, 14),
        training_window_days=365,
        min_scored_leads=50,
        delivery_retries=2,
        # a deliberately small sandbox (one year of 3,000 leads): below the production minimums of data
        min_training_leads=500,
        min_training_applications=40,
    )
    captured: dict[str, Any] = {}
    real_train = train_module.train_and_evaluate

    def spy(*args: Any, **kwargs: Any) -> Any:  # the real function; only its result is kept for the gate tests
        captured["result"] = real_train(*args, **kwargs)
        return captured["result"]

    sftp_env = {"AIRFLOW_CONN_SLATE_SFTP": json.dumps(sftp_conn(sandbox_session))}
    old_umask = os.umask(0o022)  # a permissive default; the task entry (airflow_adapter.run_context, cli) tightens it
    try:
        owner_only_umask()
        with LogCollector() as logs, threadpool_limits(1), pytest.MonkeyPatch.context() as mp:
            mp.setattr(train_module, "train_and_evaluate", spy)
            for key, value in sftp_env.items():
                mp.setenv(key, value)
            api = sandbox_config(sandbox_session)
            extracts = [data.extract_week(settings, week, api) for week in WEEKS]
            built = training.build_training_set(settings)
            trained = training.train_and_register(settings, built)
            scored = inference.score_week(settings, WEEKS[-1])
            delivered = inference.deliver_week(settings, scored)
            imported = sandbox_session.importer.poll()
    finally:
        os.umask(old_umask)
    modes = _loose_modes(home)
    assert trained["gate"] == "passed" and trained["version"] == "1", trained
    assert delivered["sent"] == len(scored["files"]) >= 1 and len(imported) == delivered["sent"]
    return PipelineRun(
        settings=settings,
        sandbox=sandbox_session,
        extracts=extracts,
        built=built,
        training=trained,
        scored=scored,
        delivered=delivered,
        imported=imported,
        logs=logs.text,
        result=captured.get("result"),
        sftp_env=sftp_env,
        loose_modes=modes,
    )


def _loose_modes(root: Path) -> list[str]:
    """Files not 0o600 and folders not 0o700 under ``root``, as "0o644 path" lines."""
    out = []
    for path in [root, *sorted(root.rglob("*"))]:
        if path.is_symlink():
            continue
        mode = path.stat().st_mode & 0o777
        if mode != (0o700 if path.is_dir() else 0o600):
            out.append(f"{oct(mode)} {path.relative_to(root.parent)}")
    return out
