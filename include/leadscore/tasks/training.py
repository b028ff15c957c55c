"""The `lead_training` steps: build the landmark training set, train and evaluate candidates, log, gate, promote."""

from __future__ import annotations

import io
import json
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from leadscore.files import atomic_write_bytes, restrict_tree
from leadscore.run_log import write_summary
from leadscore.settings import Settings

if TYPE_CHECKING:
    from leadscore.model.training_set import TrainingSet

log = logging.getLogger(__name__)

_BLOCK = "_block"  # persisted split: "train", "holdout" or "" (neither: inside the gap)


class NoExtractError(RuntimeError):
    """There is no stored extract to train on."""


def extract_available(settings: Settings) -> bool:
    """True once both queries have a stored extract (what build_training_set needs); logs what it waits for."""
    from leadscore.data.store import ExtractStore

    store = ExtractStore(settings.extracts_dir)
    missing = [q for q in ("leads", "interactions") if store.latest_end(q) is None]
    if missing:
        log.info("waiting for lead_data's first extract: no %s extract under %s yet", " or ".join(missing), store.root)
    return not missing


def build_training_set(settings: Settings, as_of: str | None = None) -> dict[str, Any]:
    """Build point-in-time landmark rows from every stored extract and split them in time.

    Above ``settings.training_max_leads`` leads in the training window, the rows are built for a seeded uniform
    random sample of that many leads (``model.training_set.sample_leads``); the summary's ``sample.*`` counts say so
    (they reach the MLflow run's params as ``data.sample.*``, the model card and the training summary).

    Args:
        settings: landmark days, training window, lead cap, horizon, folders.
        as_of: ISO date to train as of; default and upper bound: the latest extract's end (no label from the future).
    Returns:
        A summary with the Parquet path of the rows (and their split) and the counts.
    Raises:
        NoExtractError: no extract is stored yet (run lead_data first).
    """
    import pandas as pd

    from leadscore.data.events import stored_interactions
    from leadscore.data.store import ExtractStore
    from leadscore.model.training_set import build_landmarks, sample_leads, time_split
    from leadscore.tasks.ceiling import attach_truth, sandbox_truth

    store = ExtractStore(settings.extracts_dir)
    latest = store.latest_end("leads")
    if latest is None or store.latest_end("interactions") is None:
        raise NoExtractError(f"no extract under {settings.extracts_dir}: run lead_data (or `make backfill`) first")
    cutoff = min(pd.Timestamp(as_of), pd.Timestamp(latest)) if as_of else pd.Timestamp(latest)
    # Only what was known at the cutoff: a re-run of a past training sees the rows that training saw.
    leads = store.read_all("leads", as_of=cutoff)
    leads, sample = sample_leads(leads, cutoff, settings.training_window_days, settings.training_max_leads)
    if sample["sampled"]:
        log.warning(
            "training on a random sample of %s of the %s leads in the training window (LEADSCORE_TRAINING_MAX_LEADS, "
            "seed %s)",
            f"{sample['used_leads']:,}",
            f"{sample['eligible_leads']:,}",
            sample["seed"],
        )
    interactions = stored_interactions(store, cutoff)  # read from the Parquet extracts by features_at (data.events)
    rows = build_landmarks(
        leads, interactions, cutoff, settings.landmark_days, settings.training_window_days, settings.horizon_days
    )
    truth = sandbox_truth(settings, store.read_source())  # None unless the extracts came from the sandbox
    has_truth = truth is not None
    if has_truth:  # the generator's true probability: the ceiling every model is measured against
        rows = attach_truth(rows, truth, settings.horizon_days)
    ts = time_split(rows, cutoff, settings.horizon_days)
    out = ts.rows.copy()
    out[_BLOCK] = ""
    out.loc[ts.train_mask, _BLOCK] = "train"
    out.loc[ts.holdout_mask, _BLOCK] = "holdout"
    folder = settings.home_abs / "training" / f"{cutoff:%Y%m%d}"
    buf = io.BytesIO()
    out.to_parquet(buf, index=False)
    atomic_write_bytes(folder / "rows.parquet", buf.getvalue())
    summary = {
        "as_of": cutoff.isoformat(),
        "split_time": pd.Timestamp(ts.split_time).isoformat(),
        "horizon_days": settings.horizon_days,
        "rows_path": str(folder / "rows.parquet"),
        "rows": len(out),
        "train_rows": int(ts.train_mask.sum()),
        "holdout_rows": int(ts.holdout_mask.sum()),
        "leads": int(out["person_guid"].nunique()),
        "events": int(out["event"].sum()),
        "has_truth": bool(has_truth),
        "extract_intervals": len(store.intervals("leads")),
        **{f"sample.{k}": v for k, v in sample.items()},
        **{f"info.{k}": v for k, v in (ts.info or {}).items() if isinstance(v, int | float | str)},
    }
    atomic_write_bytes(folder / "training_set.json", json.dumps(summary, indent=2, default=str).encode())
    log.info("training set: %s", summary)
    return summary


def load_training_set(built: dict[str, Any]) -> TrainingSet:
    """Read a training set written by build_training_set."""
    import pandas as pd

    from leadscore.model.training_set import TrainingSet

    rows = pd.read_parquet(built["rows_path"])
    block = rows.pop(_BLOCK).to_numpy()
    return TrainingSet(
        rows=rows,
        train_mask=block == "train",
        holdout_mask=block == "holdout",
        as_of=pd.Timestamp(built["as_of"]),
        split_time=pd.Timestamp(built["split_time"]),
        horizon_days=int(built["horizon_days"]),
        info=built,
    )


def train_and_register(settings: Settings, built: dict[str, Any]) -> dict[str, Any]:
    """Fit and evaluate the candidates, log the run to MLflow, register the chosen model and gate it.

    Returns:
        A summary: chosen kind, registered version, gate decision and reasons, holdout metrics (with the ceiling).
    """
    from leadscore.model.registry import gate_and_promote, log_training_run
    from leadscore.model.train import train_and_evaluate

    ts = load_training_set(built)
    out_dir = Path(built["rows_path"]).parent / "plots"
    result = train_and_evaluate(ts, settings.replace(horizon_days=ts.horizon_days), out_dir=out_dir)
    _attach_reference_profile(result, ts, settings)
    info = {k: v for k, v in built.items() if k != "rows_path"}
    run = log_training_run(result, settings, info)
    decision = gate_and_promote(result, run, settings)
    _log_insight_report(settings, result, ts, run)
    restrict_tree(settings.home_abs / "mlflow")  # MLflow copies code_paths with their source modes
    holdout = {}
    for name in result.evaluation.index.get_level_values(0).unique():
        m = result.evaluation.loc[(name, "all")].to_dict()
        holdout[str(name)] = {k: float(m[k]) for k in ("auc", "log_loss", "brier") if k in m}
    summary = {
        "as_of": built["as_of"],
        "chosen": result.chosen,
        "version": run.model_version,
        "run_id": run.run_id,
        "gate": "passed" if decision.passed else "failed",
        "gate_reasons": decision.reasons,
        "previous_champion": decision.champion_version,
        "holdout": holdout,
        "counts": result.counts,
        "sample": {k.split(".", 1)[1]: v for k, v in built.items() if k.startswith("sample.")},
        "skipped": result.skipped,
        "refit": {k: v for k, v in result.refit.items() if k != "params"},
        "fit_seconds": result.fit_seconds,
        "sentences": result.sentences[:8],
    }
    write_summary(settings, "training", built["as_of"][:10].replace("-", ""), summary)
    write_summary(settings, "training", "latest", summary)
    return summary


def scoring_pool(settings: Settings, as_of: Any) -> Any:
    """The leads a weekly run would score at ``as_of`` (open, recent, not test, not opted out), with features."""
    import pandas as pd

    from leadscore.data.events import stored_interactions
    from leadscore.data.features import features_as_of
    from leadscore.data.store import ExtractStore
    from leadscore.scoring.select import select_leads

    store = ExtractStore(settings.extracts_dir)
    leads = store.read_all("leads", as_of=as_of)
    features = features_as_of(leads, stored_interactions(store, as_of), pd.Timestamp(as_of))
    return select_leads(features, leads, pd.Timestamp(as_of), settings.lookback_days)


def _attach_reference_profile(result: Any, ts: TrainingSet, settings: Settings) -> None:
    """Store with the model the score and feature distributions of the population it will score each week.

    The reference is the scoring pool as of the training date (what a weekly run would have scored then), not the
    landmark rows: those over-represent young leads, so weekly scores would look drifted and every percentile shifted.
    ``lead_score`` is the percentile of a lead's probability among these reference scores.
    """
    import numpy as np

    from leadscore.data.tables import FEATURE_COLUMNS
    from leadscore.monitoring.drift import reference_profile
    from leadscore.scoring.score import published_probability

    pool = scoring_pool(settings, ts.as_of)
    if len(pool) < 100:  # a very young history: fall back to the training block, and say so
        log.warning("only %d leads in the scoring pool at %s: reference taken from training rows", len(pool), ts.as_of)
        pool = ts.rows[ts.train_mask]
    if len(pool) > 50_000:
        pool = pool.sample(50_000, random_state=0)
    features = pool[list(FEATURE_COLUMNS)]
    scores = result.model.predict_proba(features)
    sample = scores if len(scores) <= 10_000 else np.random.default_rng(0).choice(scores, 10_000, replace=False)
    result.model.reference_scores = np.sort(sample)
    # Profiled on the file's grid: the weekly score drift compares against the published (rounded) probabilities.
    result.model.reference_profile = reference_profile(
        features, published_probability(scores), hazard_ratios=result.hazard_ratios
    )


def _log_insight_report(settings: Settings, result: Any, ts: TrainingSet, run: Any) -> None:
    """The training run's marketing insight report, under reports/ and logged to the MLflow run."""
    import mlflow

    from leadscore.model.train import candidate_table
    from leadscore.monitoring.insight import training_insight_report

    path = settings.reports_dir / f"training_{ts.as_of:%Y%m%d}.html"
    training_insight_report(
        settings,
        ts.rows[ts.train_mask | ts.holdout_mask],
        result.hazard_ratios,
        result.model,
        path,
        candidates=candidate_table(result),
    )
    mlflow.set_tracking_uri(settings.tracking_uri)
    with mlflow.start_run(run_id=run.run_id):
        mlflow.log_artifact(str(path), artifact_path="reports")


def report_gate(result: dict[str, Any]) -> None:
    """Log the gate's decision; a failed gate is a warning (the champion stays), not a failure of the run."""
    if result.get("gate") == "passed":
        log.info(
            "version %s (%s) is the champion: %s",
            result["version"],
            result["chosen"],
            "; ".join(result["gate_reasons"]),
        )
    else:
        log.warning(
            "GATE FAILED: version %s (%s) was registered but NOT promoted; champion stays %s. Reasons: %s",
            result.get("version"),
            result.get("chosen"),
            result.get("previous_champion"),
            "; ".join(result.get("gate_reasons", [])),
        )
