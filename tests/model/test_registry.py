"""MLflow adapter against a real SQLite tracking store in a temporary directory: logging, pyfunc round trip, the gate's
paths and where they leave the ``champion`` alias."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest

from leadscore.data.tables import FEATURE_COLUMNS
from leadscore.model import registry
from leadscore.model.pyfunc import OUTPUT_COLUMN, pyfunc_input

COLS = list(FEATURE_COLUMNS)


def _alias_version(settings) -> str | None:
    client = registry._client(settings)
    try:
        return str(client.get_model_version_by_alias(settings.model_name, registry.ALIAS).version)
    except Exception:
        return None


def _shifted(result, log_loss_shift: float):
    """The same result with its chosen model's holdout log loss moved (to steer the gate)."""
    evaluation = result.evaluation.copy()
    evaluation.loc[(result.chosen, "all"), "log_loss"] += log_loss_shift
    return dataclasses.replace(result, evaluation=evaluation)


def _new_version(settings, run) -> registry.RunInfo:
    """Register another version of the logged model (cheaper than logging a new run)."""
    client = registry._client(settings)
    mv = client.create_model_version(settings.model_name, f"runs:/{run.run_id}/model", run_id=run.run_id)
    return dataclasses.replace(run, model_version=str(mv.version))


def test_model_layer_against_mlflow(trained, mlflow_settings):
    s = mlflow_settings
    with pytest.raises(registry.NoChampionError, match="no model has alias champion"):
        registry.load_champion(s)

    run = registry.log_training_run(trained, s, {"data_interval": "2024-01-01/2025-01-01", "sftp_password": "x"})
    client = registry._client(s)
    logged = client.get_run(run.run_id).data
    assert logged.params["data.data_interval"] == "2024-01-01/2025-01-01"
    assert not any("password" in k for k in logged.params)
    assert "ceiling.all.auc" in logged.metrics and "cox.0-7.log_loss" in logged.metrics
    artifacts = {a.path for a in client.list_artifacts(run.run_id)}
    assert {"plots", "tables", "model_card.md"} <= artifacts
    exp = client.get_experiment(run.experiment_id)
    assert exp.name == "lead_propensity" and exp.artifact_location == s.artifact_location

    # Pyfunc round trip: identical predictions through MLflow.
    import mlflow.pyfunc

    x = trained.holdout[COLS].iloc[:200]
    loaded = mlflow.pyfunc.load_model(run.model_uri)
    out = loaded.predict(pyfunc_input(x))
    np.testing.assert_array_equal(out[OUTPUT_COLUMN].to_numpy(), trained.model.predict_proba(x))

    # No champion: only the floor applies, and it passes.
    decision = registry.gate_and_promote(trained, run, s)
    assert decision.passed and _alias_version(s) == run.model_version == "1"
    champ = registry.load_champion(s)
    assert champ.version == "1" and champ.run_id == run.run_id
    np.testing.assert_array_equal(champ.model.predict_proba(x), trained.model.predict_proba(x))

    # Worse than the champion on the same holdout beyond the tolerance: alias untouched, reason tagged.
    worse = _new_version(s, run)
    decision = registry.gate_and_promote(_shifted(trained, 0.05), worse, s)
    assert not decision.passed and _alias_version(s) == "1"
    tags = client.get_model_version(s.model_name, worse.model_version).tags
    assert tags["gate"] == "failed" and "worse than the champion" in tags["gate_reasons"]

    # Below the AUC floor: alias untouched.
    floor = _new_version(s, run)
    decision = registry.gate_and_promote(trained, floor, s.replace(gate_min_auc=0.999))
    assert not decision.passed and _alias_version(s) == "1"
    assert any("below the floor" in r for r in decision.reasons)

    # Better: alias moves; rollback moves it back.
    better = _new_version(s, run)
    decision = registry.gate_and_promote(_shifted(trained, -0.01), better, s)
    assert decision.passed and decision.champion_version == "1" and _alias_version(s) == better.model_version
    registry.rollback("1", s)
    assert _alias_version(s) == "1"

    # Every move of the alias is in its history, in order; failed gates are not.
    history = registry.alias_history(s)
    assert [(e.version, e.reason, e.previous) for e in history] == [
        ("1", "gate", ""),
        (better.model_version, "gate", "1"),
        ("1", "set", better.model_version),
    ]
    assert all(e.as_of.startswith(str(trained.as_of)[:10]) for e in history)


def test_gate_rules_without_mlflow(mlflow_settings):
    s = mlflow_settings.replace(gate_tolerance=0.005, gate_min_auc=0.7)
    ok = {"calibration_slope": 1.02, "calibration_intercept": -0.05}
    assert registry.evaluate_gate({"auc": 0.8, "log_loss": 0.2, **ok}, None, s).passed
    assert not registry.evaluate_gate({"auc": 0.65, "log_loss": 0.2, **ok}, None, s).passed
    assert registry.evaluate_gate({"auc": 0.8, "log_loss": 0.204, **ok}, {"auc": 0.8, "log_loss": 0.2}, s).passed
    failed = registry.evaluate_gate({"auc": 0.8, "log_loss": 0.206, **ok}, {"auc": 0.8, "log_loss": 0.2}, s)
    assert not failed.passed and "tolerance 0.005" in "; ".join(failed.reasons)
    assert not registry.evaluate_gate({"auc": float("nan"), "log_loss": 0.1, **ok}, None, s).passed


@pytest.mark.parametrize(
    ("slope", "intercept", "passed"),
    [(1.0, 0.0, True), (0.79, 0.0, False), (1.3, 0.0, False), (1.0, 0.3, False), (1.0, -0.3, False), (0.85, 0.2, True)],
)
def test_a_badly_calibrated_version_is_not_promoted(mlflow_settings, slope, intercept, passed):
    metrics = {"auc": 0.85, "log_loss": 0.1, "calibration_slope": slope, "calibration_intercept": intercept}
    decision = registry.evaluate_gate(metrics, None, mlflow_settings)
    assert decision.passed is passed
    assert passed or "badly calibrated" in "; ".join(decision.reasons)
    tolerant = mlflow_settings.replace(gate_calibration_slope=(0.5, 2.0), gate_calibration_intercept=1.0)
    assert registry.evaluate_gate(metrics, None, tolerant).passed  # the bounds are settings


def test_model_card_mentions_ceiling_and_limitations(trained, mlflow_settings):
    card = registry.model_card(trained, mlflow_settings, {"data_interval": "x", "api_token": "secret"})
    assert "ceiling" in card and "## Limitations" in card and "secret" not in card


def test_skipped_candidates_and_the_refit_window_reach_mlflow_and_the_training_report(thin_trained, tmp_path):
    from leadscore.model.train import candidate_table
    from leadscore.monitoring.insight import training_insight_report
    from leadscore.settings import Settings

    ts, result = thin_trained
    home = tmp_path / "home"
    s = Settings(home=home, mlflow_tracking_uri=f"sqlite:///{home / 'mlflow.db'}", min_training_applications=40)
    run = registry.log_training_run(result, s, {})
    logged = registry._client(s).get_run(run.run_id).data
    assert logged.params["candidates_skipped"] == "cox,logistic,lgbm" and logged.params["candidates_fitted"] == "hgb"
    assert logged.tags["skipped.logistic"] == result.skipped["logistic"]
    assert "inner time split" in logged.tags["skipped.cox"]
    assert logged.params["refit.label_end"] == str(ts.as_of - pd.Timedelta(days=30))
    assert logged.params["data_check.applications"] == "60"
    # The registered (served) model is the refit: fitted on rows up to as_of - H, and it says so.
    import mlflow.pyfunc

    served = mlflow.pyfunc.load_model(run.model_uri).unwrap_python_model().lead_model
    assert pd.Timestamp(served.trained_on["window_end"]) < ts.as_of - pd.Timedelta(days=30)
    assert pd.Timestamp(served.trained_on["window_end"]) > ts.split_time
    card = registry.model_card(result, s, {})
    assert "skipped **cox**" in card and "refitted with its chosen hyper-parameters" in card

    page = training_insight_report(
        s,
        ts.rows[ts.train_mask | ts.holdout_mask],
        result.hazard_ratios,
        result.model,
        tmp_path / "t.html",
        candidates=candidate_table(result),
    ).read_text()
    assert "Candidates" in page and "skipped: fit on the training block" in page
    assert "3 candidate(s) could not be fitted" in page


def test_champion_command_moves_the_alias_and_shows_the_history(trained, mlflow_settings, monkeypatch, capsys):
    from leadscore import cli

    s = mlflow_settings
    if _alias_version(s) is None:  # run alone: register and promote a first version
        registry.gate_and_promote(trained, registry.log_training_run(trained, s, {}), s)
    monkeypatch.setenv("LEADSCORE_HOME", str(s.home))
    monkeypatch.setenv("LEADSCORE_MLFLOW_TRACKING_URI", s.mlflow_tracking_uri)
    before = len(registry.alias_history(s))
    assert cli.main(["champion", "--set", "1", "--from", "2020-01-06"]) == 0
    out = capsys.readouterr().out
    assert "lead_propensity@champion -> version 1" in out and "alias history" in out
    history = registry.alias_history(s)
    assert len(history) == before + 1
    assert (history[-1].version, history[-1].reason, history[-1].effective_from) == ("1", "set", "2020-01-06T00:00:00")
    assert cli.main(["champion", "--from", "2020-01-06"]) == 2  # --from alone moves nothing
