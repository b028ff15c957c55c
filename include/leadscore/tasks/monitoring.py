"""Glue between the inference run and the monitoring package: inputs from the run's files, result to its summary."""

from __future__ import annotations

import logging
from typing import Any

from leadscore.intervals import Interval
from leadscore.run_log import write_summary
from leadscore.settings import Settings

log = logging.getLogger(__name__)


def run_weekly_monitoring(settings: Settings, interval: Interval, delivered: dict[str, Any]) -> dict[str, Any]:
    """Monitor the week: realized performance of past scores, drift, the HTML report, then the gates.

    The summary and report are written before the gates are checked, so a failing gate still leaves its evidence.

    Raises:
        MonitoringGateError: a failure bound is passed.
    """
    import pandas as pd

    from leadscore.model.registry import champion_for_week
    from leadscore.monitoring import monitor_week
    from leadscore.monitoring.gates import check_gates, load_thresholds
    from leadscore.tasks.inference import features_path

    path = features_path(settings, interval)
    features = pd.read_parquet(path) if path.exists() else None
    champion = champion_for_week(settings, interval.end)  # the version that scored this week
    reference = getattr(champion.model, "reference_profile", None)
    result = monitor_week(settings, interval.end_date, features, reference)
    summary = {
        "scored_on": interval.end_date.isoformat(),
        "status": result.status,
        "messages": list(result.messages),
        "report": str(result.report_path),
        "delivered": {k: delivered.get(k) for k in ("sent", "skipped", "dry_run")},
    }
    summary["mlflow_run_id"] = _log_to_mlflow(settings, interval, result, champion.version)
    write_summary(settings, "monitoring", interval.key, summary)
    check_gates(result, load_thresholds())
    return summary


MONITORING_EXPERIMENT = "lead_propensity_monitoring"


def _log_to_mlflow(settings: Settings, interval: Interval, result: Any, model_version: str) -> str:
    """One MLflow run per monitored week (re-runs of a week replace nothing, they add a run tagged the same week):
    the HTML report, the status and every numeric metric, so week-over-week trends show in the MLflow UI."""
    import math
    import re

    import mlflow

    mlflow.set_tracking_uri(settings.tracking_uri)
    experiment = mlflow.get_experiment_by_name(MONITORING_EXPERIMENT)
    experiment_id = (
        experiment.experiment_id
        if experiment
        else mlflow.create_experiment(MONITORING_EXPERIMENT, artifact_location=_monitoring_artifacts(settings))
    )
    numeric = {}
    for key, value in _flatten(result.metrics).items():
        if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
            numeric[re.sub(r"[^A-Za-z0-9_\-./ ]", "_", key)] = float(value)
    with mlflow.start_run(experiment_id=experiment_id, run_name=f"week_{interval.end_date:%Y%m%d}") as run:
        mlflow.set_tags(
            {"scored_on": interval.end_date.isoformat(), "status": result.status, "model_version": model_version}
        )
        if numeric:
            mlflow.log_metrics(dict(list(numeric.items())[:500]))
        mlflow.log_artifact(str(result.report_path), artifact_path="reports")
    from leadscore.files import restrict_tree

    restrict_tree(settings.home_abs / "mlflow")
    return run.info.run_id


def _monitoring_artifacts(settings: Settings) -> str | None:
    base = settings.artifact_location
    return None if base is None else base + "/monitoring"


def _flatten(obj: Any, prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    if isinstance(obj, dict):
        for k, v in obj.items():
            name = f"{prefix}.{k}" if prefix else str(k)
            out.update(_flatten(v, name))
    elif not isinstance(obj, list | tuple):
        out[prefix] = obj
    return out
