"""Training orchestration: check the data is enough, fit the Cox model and the challengers on the training block
(a candidate that cannot be fitted is skipped, with its reason), evaluate them on the later holdout block (and the
generator's true probability when present), recalibrate where it helps, pick the champion candidate, refit it on every
row whose label is observed, interpret it and draw the plots. Pure apart from writing plot files; MLflow logging is in
``registry``.

This module holds :func:`train_and_evaluate` and the champion rule (:func:`choose_champion`) and re-exports the rest:
the minimum-data check (``model.data_check``), candidate fitting and the refit (``model.candidate_fit``) and the
result with its views (``model.training_result``).
"""

from __future__ import annotations

import logging
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from leadscore.data.tables import AGE_COLUMN, FEATURE_COLUMNS
from leadscore.model import plots
from leadscore.model.calibrate import choose_recalibration
from leadscore.model.candidate_fit import (  # noqa: F401  (_outcomes: importable from here as before)
    CANDIDATE_KINDS,
    NoCandidateError,
    _outcomes,
    chosen_params,
    fit_candidate,
    refit_chosen,
)
from leadscore.model.candidate_fit import try_candidate as _try
from leadscore.model.cox import CoxModel
from leadscore.model.data_check import (
    DAYS_PER_MONTH,
    WHAT_TO_DO,
    InsufficientDataError,
    TrainingSetLike,
    check_training_data,
)
from leadscore.model.ensemble import ENSEMBLE, MIN_MEMBERS, ensemble_of
from leadscore.model.evaluate import calibration_curve, evaluate_scores
from leadscore.model.interpret import effect_sentences, hazard_ratios
from leadscore.model.lead_model import LeadModel
from leadscore.model.training_result import TrainingResult, candidate_table, cox_of
from leadscore.settings import Settings

__all__ = [
    "CANDIDATE_KINDS",
    "CEILING",
    "DAYS_PER_MONTH",
    "WHAT_TO_DO",
    "InsufficientDataError",
    "NoCandidateError",
    "TrainingResult",
    "TrainingSetLike",
    "candidate_table",
    "check_training_data",
    "choose_champion",
    "chosen_params",
    "cox_of",
    "fit_candidate",
    "refit_chosen",
    "train_and_evaluate",
]

log = logging.getLogger(__name__)

CEILING = "true_p"


def choose_champion(overall: dict[str, dict[str, float]], survival_preference: float) -> str:
    """Best holdout log loss wins; the Cox model wins when its log loss is within ``survival_preference`` (a share,
    0.005 = 0.5 %) of the best one's."""
    best = min(overall, key=lambda k: overall[k]["log_loss"])
    if "cox" in overall and overall["cox"]["log_loss"] <= overall[best]["log_loss"] * (1 + survival_preference):
        return "cox"
    return best


def train_and_evaluate(
    ts: TrainingSetLike, settings: Settings, out_dir: Path | None = None, refit: bool = True
) -> TrainingResult:
    """Check the data, fit candidates on the training block, evaluate and recalibrate on the holdout block, choose,
    refit the chosen one on every observed label, interpret, plot.

    Args:
        ts: the landmark training set. settings: horizon, minimums, survival_preference, recalibration_min_gain and
            tier_cuts are used.
        out_dir: where plots go (default: a new temporary directory).
        refit: refit the chosen candidate on all observed labels (False: serve the training-block fit, benchmarks).
    Returns:
        A TrainingResult.
    Raises:
        ValueError: a horizon mismatch. InsufficientDataError: fewer leads, applications or months than the
        minimums. NoCandidateError: no candidate could be fitted (the message names each one's reason).
    """
    h = int(ts.horizon_days)
    if h != settings.horizon_days:
        raise ValueError(f"training set horizon {h} days differs from settings.horizon_days={settings.horizon_days}")
    rows = ts.rows
    cols = list(FEATURE_COLUMNS)
    train = rows[np.asarray(ts.train_mask, dtype=bool)]
    hold_all = rows[np.asarray(ts.holdout_mask, dtype=bool)]
    hold = hold_all[hold_all["label"].notna()]
    if len(train) == 0 or len(hold) == 0:
        raise ValueError(
            f"need training and labelled holdout rows; got {len(train)} training and {len(hold)} labelled "
            f"holdout rows (of {len(hold_all)} holdout rows)"
        )
    data_check = check_training_data(ts, settings)
    xt = train[cols]
    y = hold["label"].to_numpy(dtype=float)
    seconds: dict[str, float] = {}
    skipped: dict[str, str] = {}
    candidates: dict[str, LeadModel] = {}
    scores: dict[str, np.ndarray] = {}
    recalibration: dict[str, dict[str, Any]] = {}
    for kind in CANDIDATE_KINDS:
        started = time.perf_counter()
        impl = _try(kind, "fit on the training block", skipped, lambda kind=kind: fit_candidate(kind, train, h))
        seconds[kind] = time.perf_counter() - started
        if impl is None:
            continue
        model = _try(kind, "holdout scores", skipped, lambda kind=kind, impl=impl: LeadModel.wrap(kind, impl, h, xt))
        p = (
            None
            if model is None
            else _try(kind, "holdout scores", skipped, lambda m=model: m.predict_proba(hold[cols]))
        )
        if p is None:
            continue
        rec = choose_recalibration(y, p, hold["as_of"].to_numpy(), settings.recalibration_min_gain)
        model.calibrator = rec.calibrator
        candidates[kind], scores[kind] = model, rec.p
        recalibration[kind] = {"method": rec.method, **{f"log_loss_{k}": v for k, v in rec.log_loss.items()}}
    log.info("fit seconds: %s; skipped: %s", seconds, skipped or "none")
    if len(candidates) >= MIN_MEMBERS:
        # The plain mean of the fitted candidates (model.ensemble): nothing fitted, judged on the holdout like them.
        ensemble = _try(ENSEMBLE, "mean of the candidates", skipped, lambda: ensemble_of(candidates, h, xt))
        if ensemble is not None:
            candidates[ENSEMBLE] = ensemble
            scores[ENSEMBLE] = np.mean([scores[k] for k in ensemble.impl.members], axis=0)
            recalibration[ENSEMBLE] = {"method": None}
    if not candidates:
        info = ts.info.get("train", {}) if isinstance(ts.info, dict) else {}
        raise NoCandidateError(
            "no candidate model could be fitted: "
            + "; ".join(f"{k}: {v}" for k, v in skipped.items())
            + f". The training block holds {len(train):,} landmark rows of {train['person_guid'].nunique():,} leads "
            f"with {int(np.nansum(train['label'].to_numpy(dtype=float))):,} applications within {h} days"
            + (f" (landmarks {info.get('t_min')} to {info.get('t_max')})" if info else "")
            + f". {WHAT_TO_DO}"
        ) from None
    age = hold[AGE_COLUMN].to_numpy(dtype=float)
    if CEILING in hold.columns and hold[CEILING].notna().all():
        scores["ceiling"] = hold[CEILING].to_numpy(dtype=float)
    evaluation = pd.concat({name: evaluate_scores(y, p, age) for name, p in scores.items()}, names=["model"])
    overall = {k: evaluation.loc[(k, "all")].to_dict() for k in candidates}
    chosen = choose_champion(overall, settings.survival_preference)
    log.info("holdout log loss %s; chosen %s", {k: round(v["log_loss"], 5) for k, v in overall.items()}, chosen)
    params = {k: chosen_params(k, m.impl) for k, m in candidates.items()}
    served, refit_info = candidates[chosen], {}
    if refit:
        started = time.perf_counter()
        served, refit_info = refit_chosen(ts, candidates[chosen], params[chosen])
        seconds["refit"] = time.perf_counter() - started
        log.info("refitted %s on %s rows up to %s", chosen, refit_info["rows"], refit_info["window_end"])

    cox = candidates["cox"].impl if "cox" in candidates else None
    hr = hazard_ratios(cox, xt) if isinstance(cox, CoxModel) else pd.DataFrame()
    sentences = effect_sentences(hr) if len(hr) else []
    out = Path(tempfile.mkdtemp(prefix="leadscore-plots-")) if out_dir is None else Path(out_dir)
    plot_paths = {
        "roc": plots.plot_roc(y, scores, out / "roc.png"),
        "calibration": plots.plot_calibration(y, scores, out / "calibration.png"),
        "lift": plots.plot_lift(y, scores[chosen], out / "lift_by_decile.png", chosen),
        "survival_by_tier": plots.plot_survival_by_tier(
            hold_all["duration"].to_numpy(dtype=float),
            hold_all["event"].to_numpy(dtype=bool),
            candidates[chosen].predict_proba(hold_all[cols]),
            settings.tier_cuts,
            h,
            out / "survival_by_tier.png",
        ),
    }
    if len(hr):
        plot_paths["hazard_ratios"] = plots.plot_forest(hr, out / "hazard_ratios.png")
    keep = [*cols, "label"] + ([CEILING] if CEILING in hold.columns else [])
    return TrainingResult(
        candidates=candidates,
        evaluation=evaluation,
        chosen=chosen,
        model=served,
        calibration={name: calibration_curve(y, p) for name, p in scores.items()},
        hazard_ratios=hr,
        sentences=sentences,
        plots=plot_paths,
        holdout=hold[keep].reset_index(drop=True),
        horizon_days=h,
        fit_seconds=seconds,
        counts={
            "rows": len(rows),
            "train_rows": len(train),
            "holdout_rows": len(hold_all),
            "holdout_labelled_rows": len(hold),
            "train_events": int(train["event"].sum()),
            "train_leads": int(train["person_guid"].nunique()),
            "holdout_leads": int(hold_all["person_guid"].nunique()),
        },
        cox_params={"penalizer": cox.penalizer, "l1_ratio": cox.l1_ratio, "grid": cox.grid}
        if isinstance(cox, CoxModel)
        else {},
        as_of=ts.as_of,
        split_time=ts.split_time,
        skipped=skipped,
        recalibration=recalibration,
        params=params,
        refit=refit_info,
        data_check=data_check,
    )
