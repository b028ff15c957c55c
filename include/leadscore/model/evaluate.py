"""Holdout evaluation of probability scores: discrimination, accuracy, calibration and lift, overall and by lead age."""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.special import expit, logit
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import brier_score_loss, log_loss, roc_auc_score

AGE_BUCKETS: tuple[tuple[str, float, float], ...] = (
    ("0-7", 0, 7),
    ("8-30", 8, 30),
    ("31-90", 31, 90),
    ("91+", 91, np.inf),
)
EPS = 1e-6
METRIC_NAMES = (
    "n",
    "positives",
    "base_rate",
    "auc",
    "log_loss",
    "brier",
    "calibration_slope",
    "calibration_intercept",
    "top_decile_precision",
    "top_decile_lift",
)


def calibration_slope_intercept(y: np.ndarray, p: np.ndarray) -> tuple[float, float]:
    """Logistic recalibration of ``z = logit(p)``; returns (slope, intercept), 1 and 0 when well calibrated.

    The slope is b of ``logit P(y=1) = a + b z``; the intercept is calibration-in-the-large, a of
    ``logit P(y=1) = a + z`` (slope fixed at 1), so it reads as "predictions are too low (> 0) or too high (< 0)".
    """
    z = logit(np.clip(p, EPS, 1 - EPS))
    clf = LogisticRegression(C=np.inf, max_iter=1000).fit(z.reshape(-1, 1), y)
    a = 0.0
    for _ in range(50):  # Newton steps for the one-parameter offset model
        q = expit(a + z)
        step = float(np.sum(y - q) / max(np.sum(q * (1 - q)), 1e-12))
        a += step
        if abs(step) < 1e-10:
            break
    return float(clf.coef_[0, 0]), float(a)


def top_decile(y: np.ndarray, p: np.ndarray, share: float = 0.1) -> tuple[float, float]:
    """Precision among the top ``share`` of rows by p, and its lift over the base rate."""
    k = max(1, int(np.ceil(share * len(p))))
    top = np.argsort(-p, kind="stable")[:k]
    precision = float(y[top].mean())
    base = float(y.mean())
    return precision, (precision / base if base > 0 else float("nan"))


def metrics(y: np.ndarray, p: np.ndarray) -> dict[str, float]:
    """All scalar metrics of scores ``p`` against 0/1 outcomes ``y`` (NaN where undefined, e.g. one class only)."""
    y = np.asarray(y, dtype=float)
    p = np.clip(np.asarray(p, dtype=float), 0.0, 1.0)
    out: dict[str, float] = {
        "n": float(len(y)),
        "positives": float(y.sum()),
        "base_rate": float(y.mean()) if len(y) else float("nan"),
    }
    if len(y) == 0 or np.unique(y).size < 2:
        out.update({k: float("nan") for k in METRIC_NAMES if k not in out})
        return out
    out["auc"] = float(roc_auc_score(y, p))
    out["log_loss"] = float(log_loss(y, np.clip(p, EPS, 1 - EPS), labels=[0, 1]))
    out["brier"] = float(brier_score_loss(y, p))
    out["calibration_slope"], out["calibration_intercept"] = calibration_slope_intercept(y, p)
    out["top_decile_precision"], out["top_decile_lift"] = top_decile(y, p)
    return out


def calibration_curve(y: np.ndarray, p: np.ndarray, bins: int = 10) -> pd.DataFrame:
    """Observed rate vs mean predicted probability in ``bins`` equal-count bins of p."""
    order = np.argsort(p, kind="stable")
    groups = np.array_split(order, bins)
    return pd.DataFrame(
        {
            "bin": np.arange(1, len(groups) + 1),
            "n": [len(g) for g in groups],
            "mean_predicted": [float(np.mean(p[g])) if len(g) else np.nan for g in groups],
            "observed_rate": [float(np.mean(y[g])) if len(g) else np.nan for g in groups],
        }
    )


def lift_by_decile(y: np.ndarray, p: np.ndarray) -> pd.DataFrame:
    """Rate and lift per score decile (decile 1 = highest scores)."""
    order = np.argsort(-p, kind="stable")
    groups = np.array_split(order, 10)
    base = float(np.mean(y)) if len(y) else float("nan")
    rates = [float(np.mean(y[g])) if len(g) else np.nan for g in groups]
    return pd.DataFrame(
        {
            "decile": np.arange(1, 11),
            "n": [len(g) for g in groups],
            "rate": rates,
            "lift": [r / base if base > 0 else np.nan for r in rates],
        }
    )


def age_bucket(days_as_lead: np.ndarray) -> np.ndarray:
    """Lead-age bucket label per row (0-7, 8-30, 31-90, 91+ days; fractional days floor)."""
    d = np.floor(np.asarray(days_as_lead, dtype=float))
    labels = np.full(len(d), "", dtype=object)
    for name, lo, hi in AGE_BUCKETS:
        labels[(d >= lo) & (d <= hi)] = name
    return labels


def evaluate_scores(y: np.ndarray, p: np.ndarray, days_as_lead: np.ndarray) -> pd.DataFrame:
    """Metrics overall and by lead-age bucket: one row per segment ("all", "0-7", ...), columns METRIC_NAMES."""
    y = np.asarray(y, dtype=float)
    p = np.asarray(p, dtype=float)
    buckets = age_bucket(days_as_lead)
    rows = {"all": metrics(y, p)}
    for name, _, _ in AGE_BUCKETS:
        sel = buckets == name
        rows[name] = metrics(y[sel], p[sel])
    frame = pd.DataFrame.from_dict(rows, orient="index")
    frame.index.name = "segment"
    return frame
