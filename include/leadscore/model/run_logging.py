"""Log a training run to MLflow (params, metrics, tags, plots, tables, model card) and register the chosen model."""

from __future__ import annotations

import json
import logging
import math
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from leadscore.model.model_card import model_card
from leadscore.model.model_card import safe_info as _safe_info
from leadscore.model.tracking import ensure_experiment
from leadscore.settings import Settings

if TYPE_CHECKING:  # training (and matplotlib through its plots) is not needed to load and serve a champion
    from leadscore.model.training_result import TrainingResult

log = logging.getLogger(__name__)


@dataclass
class RunInfo:
    """Where a training run went: MLflow run, experiment, registered version and model URI."""

    run_id: str
    experiment_id: str
    model_version: str
    model_uri: str


def _metric_dict(result: TrainingResult) -> dict[str, float]:
    """``<model>.<segment>.<metric>`` for every evaluation cell (segment "91+" becomes "91plus", MLflow refuses "+"),
    plus the chosen model's overall metrics under their plain names."""
    out = {}
    for (model, segment), row in result.evaluation.iterrows():
        for name, value in row.items():
            if value is None or math.isnan(float(value)):
                continue
            out[f"{model}.{str(segment).replace('+', 'plus')}.{name}"] = float(value)
            if model == result.chosen and segment == "all":
                out[str(name)] = float(value)
    out.update({f"fit_seconds.{k}": float(v) for k, v in result.fit_seconds.items()})
    out.update({f"rows.{k}": float(v) for k, v in result.counts.items()})
    return out


def run_params(result: TrainingResult) -> dict[str, Any]:
    """MLflow params of the candidates: chosen hyper-parameters, recalibration, skipped kinds, minimum-data counts
    and the served refit's training window."""
    out: dict[str, Any] = {}
    for kind, chosen in result.params.items():
        # the ensemble's members' parameters are logged under their own kinds already
        out.update({f"{kind}.{k}": ",".join(v) if k == "members" else v for k, v in chosen.items()})
    for kind, rec in result.recalibration.items():
        out[f"{kind}.recalibration"] = rec.get("method") or "none"
    out["candidates_fitted"] = ",".join(result.candidates)
    out["candidates_skipped"] = ",".join(result.skipped) or "none"
    out.update({f"data_check.{k}": v for k, v in result.data_check.items()})
    out.update({f"refit.{k}": v for k, v in result.refit.items() if k != "params"})
    out["served_model"] = "refit on every observed label" if result.refit else "training-block fit"
    return out


def run_tags(result: TrainingResult) -> dict[str, str]:
    """MLflow tags: ``skipped.<kind>`` with the reason each skipped candidate gives (one line, no traceback)."""
    return {f"skipped.{kind}": reason[:5000] for kind, reason in result.skipped.items()}


def log_training_run(result: TrainingResult, settings: Settings, training_info: dict[str, Any]) -> RunInfo:
    """Log a training run (params, metrics, data interval and counts, plots, tables, model card) and register the
    chosen model as ``settings.model_name``.

    Args:
        result: from ``train.train_and_evaluate``. settings: tracking URI, model name.
        training_info: the data interval, row counts and other facts of the training set (keys naming secrets are
            dropped).
    Returns:
        RunInfo with the run id and the registered version.
    """
    import mlflow

    experiment_id = ensure_experiment(settings)
    params = {
        "horizon_days": result.horizon_days,
        "chosen": result.chosen,
        "cox.penalizer": result.cox_params.get("penalizer"),
        "cox.l1_ratio": result.cox_params.get("l1_ratio"),
        "landmark_days": ",".join(str(d) for d in settings.landmark_days),
        "training_window_days": settings.training_window_days,
        "gate_tolerance": settings.gate_tolerance,
        "gate_min_auc": settings.gate_min_auc,
        "survival_preference": settings.survival_preference,
        "as_of": str(result.as_of),
        "split_time": str(result.split_time),
    }
    params.update(run_params(result))
    params.update(_safe_info(training_info))
    with mlflow.start_run(experiment_id=experiment_id) as run, tempfile.TemporaryDirectory() as tmp:
        mlflow.log_params({k: str(v) for k, v in params.items()})
        mlflow.log_metrics(_metric_dict(result))
        mlflow.set_tags({"chosen": result.chosen, "horizon_days": str(result.horizon_days), **run_tags(result)})
        for path in result.plots.values():
            mlflow.log_artifact(str(path), artifact_path="plots")
        tables = Path(tmp) / "tables"
        tables.mkdir()
        result.evaluation.to_csv(tables / "evaluation.csv")
        result.hazard_ratios.to_csv(tables / "hazard_ratios.csv", index=False)
        pd.concat(result.calibration, names=["model"]).to_csv(tables / "calibration.csv")
        (tables / "cox_grid.json").write_text(json.dumps(result.cox_params.get("grid", []), indent=2))
        mlflow.log_artifacts(str(tables), artifact_path="tables")
        mlflow.log_text(model_card(result, settings, training_info), "model_card.md")
        from leadscore.model.pyfunc import log_pyfunc

        info = log_pyfunc(result.model, result.holdout, Path(tmp) / "model", settings.model_name)
    version = str(info.registered_model_version)
    log.info("logged run %s, registered %s version %s", run.info.run_id, settings.model_name, version)
    return RunInfo(run.info.run_id, experiment_id, version, f"models:/{settings.model_name}/{version}")
