"""What a training run produced (:class:`TrainingResult`), and its views: the candidate table of the training report
and the fitted Cox model."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from leadscore.model.candidate_fit import CANDIDATE_KINDS
from leadscore.model.cox import CoxModel
from leadscore.model.lead_model import LeadModel


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
