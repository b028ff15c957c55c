"""One real pipeline run against the sandbox, shared by the model, security and concurrency tests.

Extract two weeks through the web service, build a small landmark training set, train and register (the gate
promotes version 1), score the last week and deliver it over SFTP; the importer picks the files up, with every log
record collected, so the tests can grep for secrets. It runs in this process and sets the owner-only umask itself, as
the task entry would: the umask promise is proved by real processes started with umask 022 (``cli_home`` below,
test_leaks.py), where deleting the product's own umask calls makes those tests fail.
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
    old_umask = owner_only_umask()  # what the task entry does (airflow_adapter.run_context, cli)
    try:
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
    )


REUSE_CLI_HOME = "LEADSCORE_TEST_CLI_HOME"  # a folder: built there once, then reused (for repeated local runs only)


@pytest.fixture(scope="session")
def cli_home(sandbox_session: Any, tmp_path_factory: pytest.TempPathFactory) -> Any:
    """A home built by real CLI processes under umask 022 (see tests/reliability/procs.py); tests copy it."""
    from tests.fixtures_sandbox import reset_sandbox
    from tests.reliability.procs import build_cli_home

    reset_sandbox(sandbox_session)
    return build_cli_home(sandbox_session, tmp_path_factory.mktemp("cli"), reuse=os.environ.get(REUSE_CLI_HOME))
