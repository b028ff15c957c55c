"""MLflow adapter: log a training run, register the model, gate it against the champion, move the alias.

Tracking uses ``settings.tracking_uri`` (a SQLite store by default) and the experiment ``lead_propensity`` created
with ``settings.artifact_location``. The registered model is ``settings.model_name``; the serving model is the
version with alias ``champion`` (MLflow aliases, not the deprecated stages).

This module holds the gate (:func:`evaluate_gate`, :func:`gate_and_promote`) and re-exports the rest: the client and
experiment (``model.tracking``), run logging and registration (``model.run_logging``, ``model.model_card``) and the
champion's loading and alias moves (``model.champion_alias``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from leadscore.model.champion_alias import (  # noqa: F401  (private names: importable from here as before)
    Champion,
    _alias_version,
    _last_scored,
    _load_version,
    alias_history,
    champion_for_week,
    has_champion,
    load_champion,
    promote,
    rollback,
)
from leadscore.model.champions import (  # callers catch them from here
    ChampionHistoryError,
    NoChampionError,
    NoChampionForWeekError,
)
from leadscore.model.evaluate import metrics as score_metrics
from leadscore.model.model_card import _SECRET_KEY, model_card  # noqa: F401  (_SECRET_KEY: as before)
from leadscore.model.model_card import safe_info as _safe_info  # noqa: F401  (importable from here as before)
from leadscore.model.preprocess import ModelSignatureError
from leadscore.model.run_logging import (  # noqa: F401  (_metric_dict: importable from here as before)
    RunInfo,
    _metric_dict,
    log_training_run,
    run_params,
    run_tags,
)
from leadscore.model.tracking import ALIAS, EXPERIMENT, ensure_experiment
from leadscore.model.tracking import mlflow_client as _client
from leadscore.settings import Settings

if TYPE_CHECKING:  # training (and matplotlib through its plots) is not needed to load and serve a champion
    from leadscore.model.training_result import TrainingResult

__all__ = [
    "ALIAS",
    "EXPERIMENT",
    "Champion",
    "ChampionHistoryError",
    "GateDecision",
    "NoChampionError",
    "NoChampionForWeekError",
    "RunInfo",
    "alias_history",
    "champion_for_week",
    "champion_metrics_on_holdout",
    "ensure_experiment",
    "evaluate_gate",
    "gate_and_promote",
    "has_champion",
    "load_champion",
    "log_training_run",
    "model_card",
    "promote",
    "rollback",
    "run_params",
    "run_tags",
]

log = logging.getLogger(__name__)


@dataclass
class GateDecision:
    """Whether a candidate may become champion, and why (or why not)."""

    passed: bool
    reasons: list[str] = field(default_factory=list)
    champion_version: str | None = None


def evaluate_gate(
    candidate_metrics: dict[str, float], champion_metrics: dict[str, float] | None, settings: Settings
) -> GateDecision:
    """Gate: log loss no worse than the champion's (on the same holdout) + ``gate_tolerance``, and AUC at least
    ``gate_min_auc``, and a holdout calibration slope within ``gate_calibration_slope`` and intercept within
    ±``gate_calibration_intercept`` (the file's probability is summed into forecasts, so it must be calibrated).
    With no champion only the floor and the calibration bounds apply."""
    reasons = []
    passed = True
    auc, loss = candidate_metrics.get("auc", float("nan")), candidate_metrics.get("log_loss", float("nan"))
    if not auc >= settings.gate_min_auc:
        passed = False
        reasons.append(f"holdout AUC {auc:.4f} is below the floor gate_min_auc={settings.gate_min_auc}")
    else:
        reasons.append(f"holdout AUC {auc:.4f} >= floor {settings.gate_min_auc}")
    slope = candidate_metrics.get("calibration_slope", float("nan"))
    intercept = candidate_metrics.get("calibration_intercept", float("nan"))
    lo, hi = settings.gate_calibration_slope
    bound = settings.gate_calibration_intercept
    if not (lo <= slope <= hi and abs(intercept) <= bound):
        passed = False
        reasons.append(
            f"badly calibrated on the holdout: slope {slope:.3f} (bounds {lo}..{hi}, LEADSCORE_GATE_CALIBRATION_SLOPE),"
            f" intercept {intercept:+.3f} (bound ±{bound}, LEADSCORE_GATE_CALIBRATION_INTERCEPT)"
        )
    else:
        reasons.append(f"calibration slope {slope:.3f} in {lo}..{hi}, intercept {intercept:+.3f} within ±{bound}")
    if champion_metrics is None:
        reasons.append("no champion to compare with")
    else:
        limit = champion_metrics["log_loss"] + settings.gate_tolerance
        if not loss <= limit:
            passed = False
            reasons.append(
                f"holdout log loss {loss:.5f} is worse than the champion's {champion_metrics['log_loss']:.5f}"
                f" + tolerance {settings.gate_tolerance} on the same holdout"
            )
        else:
            reasons.append(
                f"holdout log loss {loss:.5f} <= champion's {champion_metrics['log_loss']:.5f} + "
                f"{settings.gate_tolerance}"
            )
    return GateDecision(passed, reasons)


def champion_metrics_on_holdout(
    result: TrainingResult, settings: Settings
) -> tuple[dict[str, float] | None, str | None, list[str]]:
    """Score the current champion on the new result's labelled holdout rows.

    Returns:
        (metrics or None, champion version or None, notes). None metrics when there is no champion, or when it cannot
        score these rows (other horizon, other features): the notes say which, and the gate then applies the floor only.
    """
    try:
        champ = load_champion(settings)
    except NoChampionError:
        return None, None, []
    if champ.model.horizon_days != result.horizon_days:
        return (
            None,
            champ.version,
            [
                f"champion v{champ.version} predicts {champ.model.horizon_days}-day applications, "
                f"this run {result.horizon_days}-day: not comparable, AUC floor only"
            ],
        )
    features = (
        result.holdout[champ.model.feature_columns]
        if set(champ.model.feature_columns) <= set(result.holdout.columns)
        else result.holdout
    )
    try:
        p = champ.model.predict_proba(features)
    except ModelSignatureError as exc:
        return None, champ.version, [f"champion v{champ.version} cannot score the new holdout ({exc}); AUC floor only"]
    return score_metrics(result.holdout["label"].to_numpy(dtype=float), p), champ.version, []


def gate_and_promote(result: TrainingResult, run: RunInfo, settings: Settings) -> GateDecision:
    """Compare the new version with the champion on the same holdout, promote it when the gate passes, and record the
    decision as tags (``gate``, ``gate_reasons``) on the run and the model version. A failed gate is not an error."""
    champ_metrics, champ_version, notes = champion_metrics_on_holdout(result, settings)
    decision = evaluate_gate(result.overall(result.chosen), champ_metrics, settings)
    decision.reasons = notes + decision.reasons
    decision.champion_version = champ_version
    client = _client(settings)
    status = "passed" if decision.passed else "failed"
    text = "; ".join(decision.reasons)[:5000]
    for key, value in (("gate", status), ("gate_reasons", text), ("previous_champion", str(champ_version))):
        client.set_tag(run.run_id, key, value)
        client.set_model_version_tag(settings.model_name, run.model_version, key, value)
    if champ_metrics is not None:
        client.log_metric(run.run_id, "champion_on_holdout.log_loss", champ_metrics["log_loss"])
        client.log_metric(run.run_id, "champion_on_holdout.auc", champ_metrics["auc"])
    if decision.passed:
        promote(run.model_version, settings, reason="gate")
        log.info("gate passed: %s version %s is champion (%s)", settings.model_name, run.model_version, text)
    else:
        log.warning(
            "gate failed: %s version %s not promoted; champion stays %s (%s)",
            settings.model_name,
            run.model_version,
            champ_version,
            text,
        )
    return decision
