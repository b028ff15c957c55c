"""Fitting the candidate models: one candidate of a kind (hyper-parameters chosen on the inner time split, or fixed),
the hyper-parameters it was chosen with, a failure recorded as a skipped reason, and the refit of the chosen one on
every observed label."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from leadscore.data.tables import FEATURE_COLUMNS
from leadscore.model.boosting import fit_lgbm
from leadscore.model.challengers import C_GRID, fit_hgb, fit_logistic
from leadscore.model.cox import DEFAULT_GRID, fit_cox
from leadscore.model.data_check import TrainingSetLike
from leadscore.model.ensemble import ENSEMBLE, ensemble_of
from leadscore.model.fit_errors import describe_failure
from leadscore.model.lead_model import LeadModel

log = logging.getLogger(__name__)

CANDIDATE_KINDS: tuple[str, ...] = ("cox", "logistic", "hgb", "lgbm")


class NoCandidateError(ValueError):
    """No candidate model could be fitted on the training data."""


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
    if kind == ENSEMBLE:
        return {"members": {k: chosen_params(k, m.impl) for k, m in impl.members.items()}}
    raise ValueError(f"unknown candidate kind {kind!r}")


def try_candidate(kind: str, what: str, skipped: dict[str, str], action: Callable[[], Any]) -> Any:
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
    label is observed by ``as_of`` (landmark time before ``as_of - H``), outcomes censored at ``as_of``. The ensemble
    is refitted member by member (``params["members"]``), then averaged again.

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
    if chosen.kind == ENSEMBLE:
        members = {k: refit_chosen(ts, m, params["members"][k])[0] for k, m in chosen.impl.members.items()}
        served = ensemble_of(members, h, refit_rows[list(FEATURE_COLUMNS)])
        served.trained_on = {**next(iter(members.values())).trained_on, "params": params, "members": list(members)}
        return served, served.trained_on
    skipped: dict[str, str] = {}

    def build() -> LeadModel:
        impl = fit_candidate(chosen.kind, refit_rows, h, params, prefix="full_")
        model = LeadModel.wrap(chosen.kind, impl, h, refit_rows[list(FEATURE_COLUMNS)])
        model.calibrator = chosen.calibrator
        model.reference_scores = np.sort(model.predict_proba(refit_rows[list(FEATURE_COLUMNS)].head(10_000)))
        return model

    served = try_candidate(chosen.kind, "refit on every observed label", skipped, build)
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
