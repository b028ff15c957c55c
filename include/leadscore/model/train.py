"""Training orchestration: fit the Cox model and the challengers on the training block, evaluate all of them on the
later holdout block (and the generator's true probability when present), pick the champion candidate, interpret it
and draw the plots. Pure apart from writing plot files; MLflow logging is in ``registry``."""

from __future__ import annotations

import logging
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import pandas as pd

from leadscore.data.tables import AGE_COLUMN, FEATURE_COLUMNS
from leadscore.model import plots
from leadscore.model.challengers import fit_hgb, fit_logistic
from leadscore.model.cox import CoxModel, fit_cox
from leadscore.model.evaluate import calibration_curve, evaluate_scores
from leadscore.model.interpret import effect_sentences, hazard_ratios
from leadscore.model.lead_model import LeadModel
from leadscore.settings import Settings

log = logging.getLogger(__name__)

CEILING = "true_p"


class TrainingSetLike(Protocol):
    """What training needs of ``model.training_set.TrainingSet``."""

    rows: pd.DataFrame
    train_mask: np.ndarray
    holdout_mask: np.ndarray
    as_of: Any
    split_time: Any
    horizon_days: int
    info: dict


@dataclass
class TrainingResult:
    """Everything a training run produced.

    Attributes:
        candidates: fitted LeadModel per kind ("cox", "logistic", "hgb").
        evaluation: holdout metrics, one row per (model, segment); model is a kind or "ceiling" (true_p), segment
            "all" or a lead-age bucket.
        chosen: the champion candidate's kind; ``model`` its LeadModel.
        calibration: 10-bin calibration curve per model.
        hazard_ratios: the Cox model's covariate table (interpret.hazard_ratios); ``sentences`` the strong effects.
        plots: name -> PNG path.
        holdout: the labelled holdout rows (features, label, true_p if any), to score the current champion on.
        fit_seconds: per kind; counts: row counts; cox_params: chosen penalty and grid.
    """

    candidates: dict[str, LeadModel]
    evaluation: pd.DataFrame
    chosen: str
    model: LeadModel
    calibration: dict[str, pd.DataFrame]
    hazard_ratios: pd.DataFrame
    sentences: list[str]
    plots: dict[str, Path]
    holdout: pd.DataFrame
    horizon_days: int
    fit_seconds: dict[str, float] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)
    cox_params: dict[str, Any] = field(default_factory=dict)
    as_of: Any = None
    split_time: Any = None

    def overall(self, name: str) -> dict[str, float]:
        """The "all" segment metrics of one model (kind or "ceiling")."""
        return self.evaluation.loc[(name, "all")].to_dict()


def choose_champion(overall: dict[str, dict[str, float]], survival_preference: float) -> str:
    """Best holdout log loss wins; the Cox model wins when within ``survival_preference`` of the best."""
    best = min(overall, key=lambda k: overall[k]["log_loss"])
    if "cox" in overall and overall["cox"]["log_loss"] <= overall[best]["log_loss"] + survival_preference:
        return "cox"
    return best


def train_and_evaluate(ts: TrainingSetLike, settings: Settings, out_dir: Path | None = None) -> TrainingResult:
    """Fit candidates on the training block, evaluate on the holdout block, choose, interpret, plot.

    Args:
        ts: the landmark training set. settings: horizon, survival_preference, tier_cuts are used.
        out_dir: where plots go (default: a new temporary directory).
    Returns:
        A TrainingResult.
    Raises:
        ValueError: no training or no labelled holdout rows, a horizon mismatch, or a fit that cannot proceed.
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
    xt = train[cols]
    label_t = train["label"].to_numpy(dtype=float, na_value=np.nan)
    seconds: dict[str, float] = {}

    started = time.perf_counter()
    cox = fit_cox(
        xt, train["duration"].to_numpy(dtype=float), train["event"].to_numpy(dtype=bool), train["as_of"], label_t, h
    )
    seconds["cox"] = time.perf_counter() - started
    started = time.perf_counter()
    logistic = fit_logistic(xt, label_t, train["as_of"], h)
    seconds["logistic"] = time.perf_counter() - started
    started = time.perf_counter()
    hgb = fit_hgb(xt, label_t)
    seconds["hgb"] = time.perf_counter() - started
    log.info("fit seconds: %s", seconds)

    candidates = {
        kind: LeadModel.wrap(kind, impl, h, xt) for kind, impl in (("cox", cox), ("logistic", logistic), ("hgb", hgb))
    }
    y = hold["label"].to_numpy(dtype=float)
    age = hold[AGE_COLUMN].to_numpy(dtype=float)
    scores = {kind: m.predict_proba(hold[cols]) for kind, m in candidates.items()}
    if CEILING in hold.columns and hold[CEILING].notna().all():
        scores["ceiling"] = hold[CEILING].to_numpy(dtype=float)
    evaluation = pd.concat({name: evaluate_scores(y, p, age) for name, p in scores.items()}, names=["model"])
    overall = {k: evaluation.loc[(k, "all")].to_dict() for k in candidates}
    chosen = choose_champion(overall, settings.survival_preference)
    log.info("holdout log loss %s; chosen %s", {k: round(v["log_loss"], 5) for k, v in overall.items()}, chosen)

    hr = hazard_ratios(cox, xt)
    sentences = effect_sentences(hr)
    out = Path(tempfile.mkdtemp(prefix="leadscore-plots-")) if out_dir is None else Path(out_dir)
    plot_paths = {
        "roc": plots.plot_roc(y, scores, out / "roc.png"),
        "calibration": plots.plot_calibration(y, scores, out / "calibration.png"),
        "lift": plots.plot_lift(y, scores[chosen], out / "lift_by_decile.png", chosen),
        "hazard_ratios": plots.plot_forest(hr, out / "hazard_ratios.png"),
        "survival_by_tier": plots.plot_survival_by_tier(
            hold_all["duration"].to_numpy(dtype=float),
            hold_all["event"].to_numpy(dtype=bool),
            candidates[chosen].predict_proba(hold_all[cols]),
            settings.tier_cuts,
            h,
            out / "survival_by_tier.png",
        ),
    }
    keep = [*cols, "label"] + ([CEILING] if CEILING in hold.columns else [])
    return TrainingResult(
        candidates=candidates,
        evaluation=evaluation,
        chosen=chosen,
        model=candidates[chosen],
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
        cox_params={"penalizer": cox.penalizer, "l1_ratio": cox.l1_ratio, "grid": cox.grid},
        as_of=ts.as_of,
        split_time=ts.split_time,
    )


def cox_of(result: TrainingResult) -> CoxModel:
    """The fitted Cox model of a result (always fitted, whichever candidate was chosen)."""
    impl = result.candidates["cox"].impl
    assert isinstance(impl, CoxModel)
    return impl
