"""Recalibration of a candidate's probabilities on the later (holdout) block: Platt scaling or isotonic regression.

A candidate fitted on the earlier block can be miscalibrated on later leads (a seasonal base rate, a model form that
over- or under-states differences). Whether a recalibration helps is judged without scoring rows the calibrator was
fitted on: the holdout is cut in time into two halves and each half is scored by a calibrator fitted on the other
(cross-fitting). Those cross-fitted probabilities give the candidate's holdout metrics when it is recalibrated; the
calibrator that serves is then fitted on the whole holdout.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.special import logit
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import LogisticRegression

METHODS = ("platt", "isotonic")
EPS = 1e-6
MIN_ROWS = 200  # per half: fewer rows would make the calibrator noisier than the miscalibration it fixes


@dataclass
class Calibrator:
    """A fitted map from a candidate's probability to a recalibrated one."""

    method: str
    fitted: Any

    def apply(self, p: np.ndarray) -> np.ndarray:
        """Recalibrated probabilities (same shape as ``p``)."""
        p = np.asarray(p, dtype=np.float64)
        if self.method == "platt":
            z = logit(np.clip(p, EPS, 1 - EPS)).reshape(-1, 1)
            return self.fitted.predict_proba(z)[:, 1]
        return np.clip(self.fitted.predict(p), EPS, 1 - EPS)  # isotonic can reach exact 0 or 1: keep log loss finite


def fit_calibrator(y: np.ndarray, p: np.ndarray, method: str) -> Calibrator:
    """Fit Platt scaling (logistic regression on logit p) or isotonic regression of ``y`` on ``p``.

    Raises:
        ValueError: unknown method.
    """
    y = np.asarray(y, dtype=np.float64)
    p = np.asarray(p, dtype=np.float64)
    if method == "platt":
        z = logit(np.clip(p, EPS, 1 - EPS)).reshape(-1, 1)
        return Calibrator(method, LogisticRegression(C=1e6, max_iter=1000).fit(z, y))
    if method == "isotonic":
        return Calibrator(method, IsotonicRegression(out_of_bounds="clip", y_min=0.0, y_max=1.0).fit(p, y))
    raise ValueError(f"unknown calibration method {method!r}; expected one of {METHODS}")


def _log_loss(y: np.ndarray, p: np.ndarray) -> float:
    p = np.clip(p, EPS, 1 - EPS)
    return float(-np.mean(y * np.log(p) + (1 - y) * np.log1p(-p)))


def cross_fitted(y: np.ndarray, p: np.ndarray, times: np.ndarray, method: str) -> np.ndarray | None:
    """Each time half of the holdout recalibrated by a calibrator fitted on the other half; None when a half has
    fewer than MIN_ROWS rows or one outcome only."""
    order = np.argsort(np.asarray(times), kind="stable")
    halves = np.array_split(order, 2)
    out = np.empty(len(p), dtype=np.float64)
    for this, other in ((halves[0], halves[1]), (halves[1], halves[0])):
        if len(other) < MIN_ROWS or np.unique(y[other]).size < 2:
            return None
        out[this] = fit_calibrator(y[other], p[other], method).apply(p[this])
    return out


@dataclass
class Recalibration:
    """What recalibration did for one candidate: ``method`` None when none helped; ``p`` the holdout probabilities
    to evaluate (cross-fitted when recalibrated, raw otherwise); ``calibrator`` fitted on the whole holdout."""

    method: str | None
    p: np.ndarray
    calibrator: Calibrator | None
    log_loss: dict[str, float]


def choose_recalibration(y: np.ndarray, p: np.ndarray, times: np.ndarray, min_gain: float) -> Recalibration:
    """Keep the raw probabilities unless a method lowers the cross-fitted holdout log loss by more than ``min_gain``.

    Args:
        y: holdout outcomes (0/1). p: the candidate's holdout probabilities. times: the rows' landmark times.
        min_gain: the least log-loss improvement worth a calibrator.
    Returns:
        A Recalibration; ``log_loss`` holds the raw and each method's cross-fitted log loss.
    """
    y = np.asarray(y, dtype=np.float64)
    p = np.asarray(p, dtype=np.float64)
    losses = {"raw": _log_loss(y, p)}
    best, best_p = None, p
    for method in METHODS:
        q = cross_fitted(y, p, times, method)
        if q is None:
            continue
        losses[method] = _log_loss(y, q)
        if losses[method] < losses["raw"] - min_gain and (best is None or losses[method] < losses[best]):
            best, best_p = method, q
    calibrator = fit_calibrator(y, p, best) if best else None
    return Recalibration(best, best_p, calibrator, losses)
