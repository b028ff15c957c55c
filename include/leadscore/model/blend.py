"""The blend candidate: the Cox model and the LightGBM challenger averaged on the log-odds scale, then Platt-scaled.

    logit p = a + b * (w * logit p_cox + (1 - w) * logit p_lgbm),   w in [0, 1], b > 0 in practice

Why: the Cox model (a linear log-hazard with a survival baseline) and the boosted trees (interactions, thresholds)
err differently, so an average of the two usually has a lower log loss than either. The weight and the Platt map
are fitted on the later (holdout) block, like a recalibration, and judged the same way without scoring rows they were
fitted on: the holdout is cut in time into two halves and each half is scored by a blend fitted on the other
(cross-fitting, ``calibrate.cross_fitted``'s halves). Those cross-fitted probabilities are the blend's holdout
metrics; the blend that serves is fitted on the whole holdout. The parts are the already fitted candidates (no extra
model fit); the refit of a chosen blend refits both parts with their chosen hyper-parameters.

Explanations: a lead's contribution of a feature is ``b * (w * cox term + (1 - w) * lgbm term)`` (Cox log-hazard and
LightGBM log-odds terms; for small probabilities both are log-odds terms). Hazard ratios stay the Cox part's.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy.special import expit, logit
from sklearn.linear_model import LogisticRegression

from leadscore.model.calibrate import MIN_ROWS

PARTS: tuple[str, str] = ("cox", "lgbm")
WEIGHTS: tuple[float, ...] = tuple(np.round(np.linspace(0.0, 1.0, 21), 2))
EPS = 1e-6


class BlendError(ValueError):
    """The holdout cannot fit a blend (too few rows in a time half, or one outcome only)."""


@dataclass(frozen=True)
class Stack:
    """The fitted combination: cox weight ``w`` on the log-odds scale, then ``logit p = intercept + slope * mix``."""

    weight: float
    intercept: float
    slope: float

    def apply(self, part_p: np.ndarray) -> np.ndarray:
        """Blended probabilities from a (rows x 2) array of the parts' probabilities (PARTS order)."""
        return expit(self.intercept + self.slope * _mix(part_p, self.weight))


def _mix(part_p: np.ndarray, weight: float) -> np.ndarray:
    z = logit(np.clip(np.asarray(part_p, dtype=np.float64), EPS, 1 - EPS))
    return weight * z[:, 0] + (1 - weight) * z[:, 1]


def _log_loss(y: np.ndarray, p: np.ndarray) -> float:
    p = np.clip(p, EPS, 1 - EPS)
    return float(-np.mean(y * np.log(p) + (1 - y) * np.log1p(-p)))


def fit_stack(y: np.ndarray, part_p: np.ndarray) -> Stack:
    """The weight of WEIGHTS and the Platt map with the lowest log loss of ``y`` on these rows.

    Args:
        y: 0/1 outcomes. part_p: (rows x 2) probabilities of the parts, PARTS order.
    Raises:
        BlendError: one outcome only.
    """
    y = np.asarray(y, dtype=np.float64)
    if np.unique(y).size < 2:
        raise BlendError(f"the blend needs both outcomes among its {len(y)} fitting rows")
    best: tuple[float, Stack] | None = None
    for w in WEIGHTS:
        mix = _mix(part_p, float(w)).reshape(-1, 1)
        lr = LogisticRegression(C=1e6, max_iter=1000).fit(mix, y)
        stack = Stack(float(w), float(lr.intercept_[0]), float(lr.coef_[0, 0]))
        loss = _log_loss(y, stack.apply(part_p))
        if best is None or loss < best[0]:
            best = (loss, stack)
    assert best is not None
    return best[1]


def cross_fitted_stack(y: np.ndarray, part_p: np.ndarray, times: np.ndarray) -> np.ndarray:
    """Each time half of the holdout blended by a stack fitted on the other half.

    Raises:
        BlendError: a half has fewer than ``calibrate.MIN_ROWS`` rows or one outcome only.
    """
    y = np.asarray(y, dtype=np.float64)
    order = np.argsort(np.asarray(times), kind="stable")
    halves = np.array_split(order, 2)
    out = np.empty(len(y), dtype=np.float64)
    for this, other in ((halves[0], halves[1]), (halves[1], halves[0])):
        if len(other) < MIN_ROWS:
            raise BlendError(f"a time half of the holdout holds {len(other)} rows; the blend needs {MIN_ROWS}")
        out[this] = fit_stack(y[other], part_p[other]).apply(part_p[this])
    return out


@dataclass
class BlendModel:
    """The fitted parts (PARTS order) and their stack."""

    parts: dict[str, Any]
    stack: Stack
    fit_seconds: float = 0.0
    part_log_loss: dict[str, float] = field(default_factory=dict)

    def part_proba(self, features: pd.DataFrame) -> np.ndarray:
        """(rows x 2) probabilities of the parts."""
        return np.column_stack([self.parts[k].predict_proba(features) for k in PARTS])

    def predict_proba(self, features: pd.DataFrame) -> np.ndarray:
        """P(label = 1) per row."""
        return self.stack.apply(self.part_proba(features))

    def contributions(self, features: pd.DataFrame) -> pd.DataFrame:
        """Per feature, ``slope * (w * cox term + (1 - w) * lgbm term)`` (positive raises)."""
        w, b = self.stack.weight, self.stack.slope
        cox, lgbm = (self.parts[k].contributions(features) for k in PARTS)
        return b * (w * cox + (1 - w) * lgbm[list(cox.columns)])


def params_of(model: BlendModel, part_params: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Flat hyper-parameters of a blend: ``<part>.<name>`` per part, and the stack's weight, intercept and slope."""
    out: dict[str, Any] = {f"{k}.{name}": v for k in PARTS for name, v in part_params[k].items()}
    out.update({"weight": model.stack.weight, "intercept": model.stack.intercept, "slope": model.stack.slope})
    return out


def split_params(params: dict[str, Any]) -> tuple[dict[str, dict[str, Any]], Stack]:
    """Invert ``params_of``: the parts' hyper-parameters and the stack.

    Raises:
        KeyError: a key of the stack is missing.
    """
    parts: dict[str, dict[str, Any]] = {k: {} for k in PARTS}
    for key, value in params.items():
        head, _, name = key.partition(".")
        if head in parts and name:
            parts[head][name] = value
    return parts, Stack(float(params["weight"]), float(params["intercept"]), float(params["slope"]))
