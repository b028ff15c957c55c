"""MLflow adapter: log a training run, register the model, gate it against the champion, move the alias.

Tracking uses ``settings.tracking_uri`` (a SQLite store by default) and the experiment ``lead_propensity`` created
with ``settings.artifact_location``. The registered model is ``settings.model_name``; the serving model is the
version with alias ``champion`` (MLflow aliases, not the deprecated stages).
"""

from __future__ import annotations

import json
import logging
import math
import re
import tempfile
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from leadscore.model import champions
from leadscore.model.champions import (  # noqa: F401  (callers catch them from here)
    ChampionHistoryError,
    NoChampionError,
    NoChampionForWeekError,
)
from leadscore.model.evaluate import METRIC_NAMES
from leadscore.model.evaluate import metrics as score_metrics
from leadscore.model.lead_model import LeadModel
from leadscore.model.preprocess import ModelSignatureError
from leadscore.settings import Settings

if TYPE_CHECKING:  # training (and matplotlib through its plots) is not needed to load and serve a champion
    from leadscore.model.train import TrainingResult

log = logging.getLogger(__name__)

EXPERIMENT = "lead_propensity"
ALIAS = "champion"
_SECRET_KEY = re.compile(r"pass|secret|token|key|auth|credential|conn", re.IGNORECASE)


@dataclass
class RunInfo:
    """Where a training run went: MLflow run, experiment, registered version and model URI."""

    run_id: str
    experiment_id: str
    model_version: str
    model_uri: str


@dataclass
class GateDecision:
    """Whether a candidate may become champion, and why (or why not)."""

    passed: bool
    reasons: list[str] = field(default_factory=list)
    champion_version: str | None = None


@dataclass
class Champion:
    """The current champion: its LeadModel, registry version and the run that produced it."""

    model: LeadModel
    version: str
    run_id: str


def _client(settings: Settings):
    import mlflow
    from mlflow import MlflowClient

    uri = settings.tracking_uri
    if uri.startswith("sqlite:///"):
        Path(uri.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    return MlflowClient(tracking_uri=uri, registry_uri=uri)


def ensure_experiment(settings: Settings) -> str:
    """The id of experiment ``lead_propensity``, created with ``settings.artifact_location`` if missing."""
    client = _client(settings)
    exp = client.get_experiment_by_name(EXPERIMENT)
    if exp is not None:
        return exp.experiment_id
    return client.create_experiment(EXPERIMENT, artifact_location=settings.artifact_location)


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


def _safe_info(info: dict[str, Any]) -> dict[str, str]:
    """Training info as params, with any secret-looking key dropped (secrets must never reach MLflow)."""
    return {f"data.{k}": str(v)[:500] for k, v in info.items() if not _SECRET_KEY.search(str(k))}


def model_card(result: TrainingResult, settings: Settings, training_info: dict[str, Any]) -> str:
    """A markdown model card: intended use, data, metrics beside the ceiling, effects, limitations."""
    cols = [m for m in METRIC_NAMES if m not in ("positives", "top_decile_precision")]  # the card stays narrow
    table = result.evaluation[cols].round(4).reset_index()
    header = "| " + " | ".join(table.columns) + " |\n|" + "---|" * len(table.columns) + "\n"
    body = "".join("| " + " | ".join(str(v) for v in row) + " |\n" for row in table.itertuples(index=False))
    info = "\n".join(f"- {k}: {v}" for k, v in _safe_info(training_info).items())
    counts = "\n".join(f"- {k}: {v}" for k, v in result.counts.items())
    effects = "\n".join(f"- {s}" for s in result.sentences) or "- (no effect passed the strength threshold)"
    refit = result.refit
    served = (
        f"The served model is the chosen candidate refitted with its chosen hyper-parameters on every landmark whose "
        f"{result.horizon_days}-day label is observed: {refit.get('rows')} rows from {refit.get('window_start')} to "
        f"{refit.get('window_end')}. The metrics below are the training-block fit's, on the holdout."
        if refit
        else "The served model is the training-block fit."
    )
    skipped = "".join(f"\n- skipped **{k}**: {v}" for k, v in result.skipped.items())
    recal = "".join(
        f"\n- {k}: recalibrated ({r['method']}, cross-fitted on the holdout's time halves)"
        for k, r in result.recalibration.items()
        if r.get("method")
    )
    return f"""# Model card: {settings.model_name} ({result.chosen})

## Intended use
Ranks recent, still-open Slate leads by the probability that they start an application within
{result.horizon_days} days of the scoring date, so counselors can prioritise outreach. Scores are conditional on the
lead having no application at the scoring date. Not for decisions about admission, aid or eligibility.

## Data
Landmark rows (lead x lead-age landmark while still open), features as of each landmark. Candidates fitted on
landmarks before {result.split_time}, evaluated on the later block (never seen in fitting, H-day gap), training date
{result.as_of}. {served}
{info}
{counts}

## Candidates and choice
Chosen: **{result.chosen}** (best holdout log loss; the Cox model is preferred within
{settings.survival_preference}). Cox penalty: penalizer={result.cox_params.get("penalizer")},
l1_ratio={result.cox_params.get("l1_ratio")}. "ceiling" is the sandbox generator's true probability (only on
sandbox data): no model can beat it in expectation.
{skipped}
{recal}

{header}{body}
## Strong effects (Cox model, other things equal)
{effects}

## Limitations
- Trained on one institution's history; source mix, mailings and the admission cycle change, so watch drift and
  realized performance weekly.
- Hazard-ratio confidence intervals treat the landmark rows of one lead as independent and are penalized: read them
  as approximate.
- Effects are associations, not the effect of an intervention: calling a lead is not the same as the lead calling.
- Leads older than the largest landmark are extrapolated.
"""


def run_params(result: TrainingResult) -> dict[str, Any]:
    """MLflow params of the candidates: chosen hyper-parameters, recalibration, skipped kinds, minimum-data counts
    and the served refit's training window."""
    out: dict[str, Any] = {}
    for kind, chosen in result.params.items():
        out.update({f"{kind}.{k}": v for k, v in chosen.items()})
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


def load_champion(settings: Settings) -> Champion:
    """Load the model with alias ``champion`` of ``settings.model_name`` (the current champion: the gate compares
    with it; scoring uses :func:`champion_for_week`).

    Raises:
        NoChampionError: no version has the alias (or the model is not registered).
    """
    from mlflow.exceptions import MlflowException

    client = _client(settings)
    try:
        mv = client.get_model_version_by_alias(settings.model_name, ALIAS)
    except MlflowException as exc:
        raise NoChampionError(
            f"no model has alias {ALIAS} in {settings.tracking_uri} (registered model {settings.model_name}); "
            "run lead_training first"
        ) from exc
    return _load_version(settings, str(mv.version), str(mv.run_id))


def _load_version(settings: Settings, version: str, run_id: str) -> Champion:
    import mlflow.pyfunc

    loaded = mlflow.pyfunc.load_model(f"models:/{settings.model_name}/{version}")
    return Champion(loaded.unwrap_python_model().lead_model, version, run_id)


def _alias_version(client, settings: Settings) -> str | None:
    from mlflow.exceptions import MlflowException

    try:
        return str(client.get_model_version_by_alias(settings.model_name, ALIAS).version)
    except MlflowException:
        return None


def alias_history(settings: Settings) -> list[champions.AliasEvent]:
    """Every recorded move of ``@champion``, in promotion order (see ``model.champions``)."""
    return champions.read_history(_client(settings), settings.model_name)


def champion_for_week(settings: Settings, week_end: datetime) -> Champion:
    """Load the version that held ``@champion`` for the week ending at ``week_end`` (the rule of
    ``model.champions``): a backfill or re-run of a week scores with the version the week had.

    Raises:
        NoChampionError: no champion at all (run lead_training first).
        NoChampionForWeekError: the week ended before the first champion took effect.
        ChampionHistoryError: the alias has no recorded history or was moved outside LeadScore.
    """
    client = _client(settings)
    event = champions.resolve(
        champions.read_history(client, settings.model_name),
        week_end,
        _alias_version(client, settings),
        settings.model_name,
    )
    mv = client.get_model_version(settings.model_name, event.version)
    return _load_version(settings, event.version, str(mv.run_id))


def has_champion(settings: Settings) -> bool:
    """Whether a version of ``settings.model_name`` has the alias ``champion`` (no model is loaded).

    Raises:
        MlflowException: the tracking server cannot be reached (an outage is not "no champion").
    """
    from mlflow.exceptions import MlflowException

    try:
        _client(settings).get_model_version_by_alias(settings.model_name, ALIAS)
    except MlflowException as exc:
        if exc.error_code in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"):
            return False
        raise
    return True


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


def _last_scored(settings: Settings):
    from leadscore.scoring.files import previous_manifest

    latest = previous_manifest(settings.scores_dir, date.max)
    return latest.scored_on_date if latest else None


def promote(
    version: str, settings: Settings, reason: str = "manual", effective: datetime | None = None
) -> champions.AliasEvent:
    """Point alias ``champion`` at ``version`` of ``settings.model_name`` and record the move in the alias history.

    The version scores weeks ending from the later of its training ``as_of`` and the day after the last week already
    scored under ``settings.scores_dir`` (``model.champions``), unless ``effective`` says otherwise.
    Returns:
        The recorded alias event.
    """
    event = champions.move_alias(
        _client(settings),
        settings.model_name,
        ALIAS,
        str(version),
        now=datetime.now(UTC).replace(tzinfo=None),  # the audit time of the move; never used to pick a week's model
        last_scored=_last_scored(settings),
        reason=reason,
        effective=effective,
    )
    log.info(
        "%s@%s -> version %s, scores weeks ending from %s", settings.model_name, ALIAS, version, event.effective_from
    )
    return event


def rollback(version: str, settings: Settings, effective: datetime | None = None) -> champions.AliasEvent:
    """Move alias ``champion`` back (or forward) to another ``version``: a manual operation, logged and recorded in
    the alias history. Weeks already scored keep their version."""
    log.warning("rolling back %s alias %s to version %s", settings.model_name, ALIAS, version)
    return promote(version, settings, reason="set", effective=effective)


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
