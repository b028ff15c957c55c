"""Training orchestration: check the data is enough, fit the Cox model and the challengers on the training block
(a candidate that cannot be fitted is skipped, with its reason), evaluate them on the later holdout block (and the
generator's true probability when present), recalibrate where it helps, pick the champion candidate, refit it on every
row whose label is observed, interpret it and draw the plots. Pure apart from writing plot files; MLflow logging is in
``registry``."""

from __future__ import annotations

import logging
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import pandas as pd

from leadscore.data.tables import AGE_COLUMN, FEATURE_COLUMNS
from leadscore.model import plots
from leadscore.model.boosting import fit_lgbm
from leadscore.model.calibrate import choose_recalibration
from leadscore.model.challengers import C_GRID, fit_hgb, fit_logistic
from leadscore.model.cox import DEFAULT_GRID, CoxModel, fit_cox
from leadscore.model.evaluate import calibration_curve, evaluate_scores
from leadscore.model.fit_errors import describe_failure
from leadscore.model.interpret import effect_sentences, hazard_ratios
from leadscore.model.lead_model import LeadModel
from leadscore.settings import Settings

log = logging.getLogger(__name__)

CEILING = "true_p"
CANDIDATE_KINDS: tuple[str, ...] = ("cox", "logistic", "hgb", "lgbm")
DAYS_PER_MONTH = 365.25 / 12
WHAT_TO_DO = (
    "Train again once more history has accumulated, widen LEADSCORE_TRAINING_WINDOW_DAYS if Slate holds older leads, "
    "or lower the minimums (LEADSCORE_MIN_TRAINING_LEADS, LEADSCORE_MIN_TRAINING_APPLICATIONS, "
    "LEADSCORE_MIN_HISTORY_MONTHS) knowing the scores will be noisier; Salesforce Einstein asks for 1,000 leads and "
    "120 conversions before it scores."
)


class InsufficientDataError(ValueError):
    """The training data holds fewer leads, applications or months of history than a model needs."""


class NoCandidateError(ValueError):
    """No candidate model could be fitted on the training data."""


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
        candidates: fitted LeadModel per kind ("cox", "logistic", "hgb", "lgbm") on the training block; a kind that could
            not be fitted is missing here and in ``skipped`` with its reason.
        evaluation: holdout metrics, one row per (model, segment); model is a kind or "ceiling" (true_p), segment
            "all" or a lead-age bucket. A recalibrated candidate is evaluated on cross-fitted probabilities.
        chosen: the champion candidate's kind; ``model`` the model to serve: the chosen candidate refitted with its
            chosen hyper-parameters on every row whose H-day label is observed (``refit`` says which rows).
        calibration: 10-bin calibration curve per model.
        hazard_ratios: the Cox model's covariate table (interpret.hazard_ratios; empty when Cox was skipped);
            ``sentences`` the strong effects.
        plots: name -> PNG path.
        holdout: the labelled holdout rows (features, label, true_p if any), to score the current champion on.
        fit_seconds: per kind; counts: row counts; cox_params: chosen penalty and grid.
        skipped: kind -> why it could not be fitted or used. recalibration: kind -> method (or None) and log losses.
        params: kind -> chosen hyper-parameters. refit: the served model's training window and counts.
        data_check: what the minimum-data check found.
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
    skipped: dict[str, str] = field(default_factory=dict)
    recalibration: dict[str, dict[str, Any]] = field(default_factory=dict)
    params: dict[str, dict[str, Any]] = field(default_factory=dict)
    refit: dict[str, Any] = field(default_factory=dict)
    data_check: dict[str, Any] = field(default_factory=dict)

    def overall(self, name: str) -> dict[str, float]:
        """The "all" segment metrics of one model (kind or "ceiling")."""
        return self.evaluation.loc[(name, "all")].to_dict()


def choose_champion(overall: dict[str, dict[str, float]], survival_preference: float) -> str:
    """Best holdout log loss wins; the Cox model wins when within ``survival_preference`` of the best."""
    best = min(overall, key=lambda k: overall[k]["log_loss"])
    if "cox" in overall and overall["cox"]["log_loss"] <= overall[best]["log_loss"] + survival_preference:
        return "cox"
    return best


def check_training_data(ts: TrainingSetLike, settings: Settings) -> dict[str, Any]:
    """Check the landmark rows hold the minimum a model needs, before anything is fitted.

    Counts distinct leads, leads with an application observed by ``as_of`` and months from the earliest lead origin
    to ``as_of``, against ``settings.min_training_leads``, ``min_training_applications`` and ``min_history_months``;
    the labelled holdout must also hold both outcomes (else no candidate can be judged).
    Returns:
        The counts found (logged to MLflow and the report).
    Raises:
        InsufficientDataError: one message naming every count found against the one needed, and what to do.
    """
    rows = ts.rows
    event = rows["full_event"] if "full_event" in rows.columns else rows["event"]
    per_lead = event.astype(bool).groupby(rows["person_guid"]).any()
    as_of = pd.Timestamp(ts.as_of)
    months = (as_of - pd.Timestamp(rows["origin_date"].min())) / pd.Timedelta(days=DAYS_PER_MONTH) if len(rows) else 0
    hold = rows.loc[np.asarray(ts.holdout_mask, dtype=bool), "label"].dropna()
    found = {
        "leads": len(per_lead),
        "applications": int(per_lead.sum()),
        "history_months": round(float(months), 1),
        "holdout_applications": int((hold == 1).sum()),
        "holdout_non_applications": int((hold == 0).sum()),
    }
    needs = [
        ("leads", "leads", settings.min_training_leads, "LEADSCORE_MIN_TRAINING_LEADS"),
        (
            "applications",
            "leads with an application",
            settings.min_training_applications,
            "LEADSCORE_MIN_TRAINING_APPLICATIONS",
        ),
        ("history_months", "months of lead history", settings.min_history_months, "LEADSCORE_MIN_HISTORY_MONTHS"),
        ("holdout_applications", "applications in the holdout block", 1, "the time split"),
        ("holdout_non_applications", "non-applications in the holdout block", 1, "the time split"),
    ]
    short = [
        f"{found[key]:,} {what} (needs {need:,}, {where})" for key, what, need, where in needs if found[key] < need
    ]
    if short:
        raise InsufficientDataError(
            f"the training data as of {as_of:%Y-%m-%d} is too thin to fit a model: it holds "
            + "; ".join(short)
            + f". {WHAT_TO_DO}"
        )
    return found


def _outcomes(rows: pd.DataFrame, prefix: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return (
        rows[f"{prefix}duration"].to_numpy(dtype=float),
        rows[f"{prefix}event"].to_numpy(dtype=bool),
        rows[f"{prefix}label"].to_numpy(dtype=float, na_value=np.nan),
    )


def fit_candidate(kind: str, rows: pd.DataFrame, h: int, params: dict[str, Any] | None = None, prefix: str = ""):
    """Fit one candidate on ``rows`` (outcome columns ``<prefix>duration``, ``<prefix>event``, ``<prefix>label``):
    choosing its hyper-parameters on the inner time split, or with ``params`` fixed (the refit).

    Raises:
        CandidateFitError, or any library error (the caller skips the candidate).
    """
    x = rows[list(FEATURE_COLUMNS)]
    duration, event, label = _outcomes(rows, prefix)
    if kind == "cox":
        grid = DEFAULT_GRID if params is None else ((params["penalizer"], params["l1_ratio"]),)
        return fit_cox(x, duration, event, rows["as_of"], label, h, grid=grid)
    if kind == "logistic":
        return fit_logistic(x, label, rows["as_of"], h, grid=C_GRID if params is None else (params["C"],))
    if kind == "hgb":
        return fit_hgb(x, label, rows["as_of"], h, max_iter=None if params is None else params["max_iter"])
    if kind == "lgbm":
        fixed = None if params is None else {k: v for k, v in params.items() if k != "rounds"}
        return fit_lgbm(x, label, rows["as_of"], h, params=fixed, rounds=None if params is None else params["rounds"])
    raise ValueError(f"unknown candidate kind {kind!r}; expected one of {CANDIDATE_KINDS}")


def chosen_params(kind: str, impl: Any) -> dict[str, Any]:
    """The hyper-parameters a fitted candidate was chosen with (what ``fit_candidate`` takes to refit it)."""
    if kind == "cox":
        return {"penalizer": impl.penalizer, "l1_ratio": impl.l1_ratio}
    if kind == "logistic":
        return {"C": impl.C}
    if kind == "hgb":
        return {"max_iter": int(impl.clf.max_iter)}
    if kind == "lgbm":
        return {**impl.params, "rounds": int(impl.rounds)}
    raise ValueError(f"unknown candidate kind {kind!r}")


def _try(kind: str, what: str, skipped: dict[str, str], action: Callable[[], Any]) -> Any:
    """Run ``action``; on any error record the one-line reason under ``kind`` and return None."""
    try:
        return action()
    except Exception as exc:  # one candidate's failure must not take the others down
        skipped[kind] = f"{what}: {describe_failure(exc)}"
        log.warning("candidate %s skipped (%s)", kind, skipped[kind])
        log.debug("candidate %s failure", kind, exc_info=True)
        return None


def refit_chosen(ts: TrainingSetLike, chosen: LeadModel, params: dict[str, Any]) -> tuple[LeadModel, dict]:
    """Refit the chosen candidate, with its chosen hyper-parameters and calibrator, on every landmark row whose H-day
    label is observed by ``as_of`` (landmark time before ``as_of - H``), outcomes censored at ``as_of``.

    Returns:
        (the served LeadModel, the refit's window and counts).
    Raises:
        NoCandidateError: the refit cannot be fitted (the message names why) or its probabilities are invalid.
    """
    h = int(ts.horizon_days)
    rows = ts.rows
    if "full_label" not in rows.columns:
        raise NoCandidateError("the training set lacks full_* outcome columns; rebuild it with time_split")
    label_end = pd.Timestamp(ts.as_of) - pd.Timedelta(days=h)
    refit_rows = rows[(rows["as_of"] < label_end).to_numpy(dtype=bool)]
    skipped: dict[str, str] = {}

    def build() -> LeadModel:
        impl = fit_candidate(chosen.kind, refit_rows, h, params, prefix="full_")
        model = LeadModel.wrap(chosen.kind, impl, h, refit_rows[list(FEATURE_COLUMNS)])
        model.calibrator = chosen.calibrator
        model.reference_scores = np.sort(model.predict_proba(refit_rows[list(FEATURE_COLUMNS)].head(10_000)))
        return model

    served = _try(chosen.kind, "refit on every observed label", skipped, build)
    if served is None:
        raise NoCandidateError(f"the chosen candidate {chosen.kind} could not be refitted: {skipped[chosen.kind]}")
    info = {
        "window_start": str(refit_rows["as_of"].min()),
        "window_end": str(refit_rows["as_of"].max()),
        "label_end": str(label_end),
        "rows": len(refit_rows),
        "leads": int(refit_rows["person_guid"].nunique()),
        "rows_with_event": int(refit_rows["full_event"].sum()),
        "positives": int(np.nansum(refit_rows["full_label"].to_numpy(dtype=float))),
        "params": params,
    }
    served.trained_on = info
    return served, info


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


def candidate_table(result: TrainingResult) -> pd.DataFrame:
    """One row per candidate kind (and the ceiling when present) for the training report: status (chosen, fitted or
    skipped with its reason), recalibration, holdout AUC, log loss, calibration slope and intercept."""
    rows = []
    for kind in [*CANDIDATE_KINDS, *(k for k in result.candidates if k not in CANDIDATE_KINDS), "ceiling"]:
        if kind in result.skipped:
            rows.append({"model": kind, "status": f"skipped: {result.skipped[kind]}"})
            continue
        if (kind, "all") not in result.evaluation.index:
            continue
        m = result.overall(kind)
        status = "chosen" if kind == result.chosen else ("reference" if kind == "ceiling" else "fitted")
        rows.append(
            {
                "model": kind,
                "status": status,
                "recalibration": (result.recalibration.get(kind) or {}).get("method") or "none",
                **{k: m.get(k) for k in ("auc", "log_loss", "calibration_slope", "calibration_intercept")},
            }
        )
    return pd.DataFrame(rows)


def cox_of(result: TrainingResult) -> CoxModel:
    """The fitted Cox model of a result.

    Raises:
        LookupError: the Cox candidate was skipped (its reason is in ``result.skipped``).
    """
    if "cox" not in result.candidates:
        raise LookupError(f"the Cox candidate was skipped: {result.skipped.get('cox', 'not fitted')}")
    impl = result.candidates["cox"].impl
    assert isinstance(impl, CoxModel)
    return impl
