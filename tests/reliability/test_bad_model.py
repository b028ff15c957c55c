"""Promise 4: a bad model never reaches Slate.

A version failing the gate is not promoted (alias unchanged, scoring keeps the old champion); a champion whose expected
features do not match is refused at scoring (ModelSignatureError); NaN or out-of-range probabilities stop the run
(ScoreValidationError). In the refused cases no score file is written and nothing is delivered.
"""

from __future__ import annotations

import dataclasses
import shutil
from datetime import date
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pytest

from leadscore.data.tables import FEATURE_COLUMNS
from leadscore.model import registry
from leadscore.model.preprocess import ModelSignatureError
from leadscore.scoring.errors import ScoreValidationError
from leadscore.scoring.score import score_leads
from leadscore.settings import Settings
from leadscore.tasks import inference
from tests.conftest import ROOT  # noqa: F401  (the session setup must be imported before Airflow)
from tests.reliability.conftest import WEEKS
from tests.reliability.helpers import NaNImpl
from tests.scoring.fakes import DummyModel, make_features


def alias_version(settings: Settings) -> str:
    client = registry._client(settings)
    return str(client.get_model_version_by_alias(settings.model_name, registry.ALIAS).version)


def register(settings: Settings, model: Any, tmp: Path) -> str:
    """Log ``model`` as a pyfunc version of the registered model (no input example: it may not score) and return
    the version."""
    import mlflow
    import mlflow.pyfunc

    from leadscore.model.pyfunc import ARTIFACT_KEY, LeadPropensityPyfunc

    path = tmp / "lead_model.joblib"
    joblib.dump(model, path)
    with mlflow.start_run(experiment_id=registry.ensure_experiment(settings)):
        info = mlflow.pyfunc.log_model(
            name="model",
            python_model=LeadPropensityPyfunc(),
            artifacts={ARTIFACT_KEY: str(path)},
            registered_model_name=settings.model_name,
            pip_requirements=["mlflow"],  # skips MLflow's slow requirement inference
        )
    return str(info.registered_model_version)


@pytest.fixture
def scoring_home(pipeline: Any, tmp_path: Path) -> Settings:
    """Settings over a fresh home holding a copy of the run's extracts and pointing at the run's MLflow store."""
    home = tmp_path / "home"
    shutil.copytree(pipeline.settings.extracts_dir, home / "extracts")
    settings = pipeline.settings.replace(home=home, mlflow_tracking_uri=pipeline.settings.tracking_uri)
    yield settings
    # whatever a test did, version 1 is the champion again, also for the week already scored
    registry.promote("1", pipeline.settings, effective=WEEKS[-1].end)


def assert_nothing_written_or_delivered(settings: Settings, sandbox: Any) -> None:
    assert not settings.scores_dir.exists() or not any(settings.scores_dir.rglob("*.csv"))
    assert not (settings.home_abs / "ledger").exists()
    assert list((sandbox.paths.sftp_root / "incoming/lead_scores").iterdir()) == []


def test_a_version_failing_the_gate_is_not_promoted_and_scoring_keeps_the_champion(
    pipeline: Any, scoring_home: Settings
) -> None:
    result, settings = pipeline.result, pipeline.settings
    client = registry._client(settings)
    run_id = pipeline.training["run_id"]
    assert alias_version(settings) == "1"

    def new_version() -> registry.RunInfo:
        mv = client.create_model_version(settings.model_name, f"runs:/{run_id}/model", run_id=run_id)
        return registry.RunInfo(run_id, "", str(mv.version), f"models:/{settings.model_name}/{mv.version}")

    evaluation = result.evaluation.copy()
    evaluation.loc[(result.chosen, "all"), "log_loss"] += 0.05
    worse = dataclasses.replace(result, evaluation=evaluation)
    candidate = new_version()
    decision = registry.gate_and_promote(worse, candidate, settings)
    assert not decision.passed and alias_version(settings) == "1"
    assert client.get_model_version(settings.model_name, candidate.model_version).tags["gate"] == "failed"

    below_floor = new_version()
    decision = registry.gate_and_promote(result, below_floor, settings.replace(gate_min_auc=0.999))
    assert not decision.passed and alias_version(settings) == "1"
    assert any("below the floor" in r for r in decision.reasons)

    summary = inference.score_week(scoring_home, WEEKS[-1])
    assert summary["model_version"] == "1"  # the failed versions never score anything


def test_champion_with_mismatched_features_is_refused_before_anything_is_written(
    pipeline: Any, scoring_home: Settings, sandbox: Any, tmp_path: Path
) -> None:
    champion = registry.load_champion(pipeline.settings)
    stale = dataclasses.replace(champion.model, feature_columns=[*FEATURE_COLUMNS, "legacy_engagement_index"])
    # effective: the week ending WEEKS[-1].end was scored already; a plain promotion would leave it to version 1
    registry.promote(register(pipeline.settings, stale, tmp_path), pipeline.settings, effective=WEEKS[-1].end)
    with pytest.raises(ModelSignatureError, match="legacy_engagement_index"):
        inference.score_week(scoring_home, WEEKS[-1])
    assert_nothing_written_or_delivered(scoring_home, sandbox)


def test_champion_answering_nan_stops_the_run_with_no_files(
    pipeline: Any, scoring_home: Settings, sandbox: Any, tmp_path: Path
) -> None:
    champion = registry.load_champion(pipeline.settings)
    broken = dataclasses.replace(champion.model, impl=NaNImpl(champion.model.impl))
    registry.promote(register(pipeline.settings, broken, tmp_path), pipeline.settings, effective=WEEKS[-1].end)
    with pytest.raises(ScoreValidationError, match="NaN or outside"):
        inference.score_week(scoring_home, WEEKS[-1])
    assert_nothing_written_or_delivered(scoring_home, sandbox)


@pytest.mark.parametrize("bad", [float("nan"), 1.5, -0.01, float("inf")], ids=["nan", "above-1", "below-0", "inf"])
def test_probabilities_outside_0_1_are_refused(bad: float) -> None:
    features = make_features(200, 1)
    p = np.full(200, 0.2)
    p[17] = bad
    with pytest.raises(ScoreValidationError, match="1 of 200 probabilities that are NaN or outside"):
        score_leads(DummyModel(p_override=p), features, "7", date(2026, 11, 23), Settings())


def test_real_champion_with_tampered_numbers_stops_the_run_with_no_files(
    pipeline: Any, scoring_home: Settings, sandbox: Any, tmp_path: Path
) -> None:
    from tests.model.test_lead_model import corrupted

    champion = registry.load_champion(pipeline.settings)
    how = {
        "cox": "negative_baseline",
        "logistic": "nan_coefficient",
        "hgb": "nan_baseline_prediction",
        "lgbm": "nan_leaves",
    }
    broken = corrupted(champion.model, how[champion.model.kind])
    registry.promote(register(pipeline.settings, broken, tmp_path), pipeline.settings, effective=WEEKS[-1].end)
    with pytest.raises(ScoreValidationError, match=f"the {champion.model.kind} model returned .* NaN or outside"):
        inference.score_week(scoring_home, WEEKS[-1])
    assert_nothing_written_or_delivered(scoring_home, sandbox)
