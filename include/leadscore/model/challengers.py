"""Challenger classifiers on the H-day label: L2 logistic regression and histogram gradient boosting (scikit-learn).

Both are fitted on training rows whose H-day label is observed, without resampling or class weights, so their
probabilities stay calibrated. Logistic regression uses the same preprocessing as the Cox model; gradient boosting
reads raw numbers and native categoricals (rare and unseen levels pooled by the same rules).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy.special import logit
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression

from leadscore.data.tables import FEATURE_CATEGORICAL, FEATURE_COLUMNS, FEATURE_FLAGS, FEATURE_NUMERIC
from leadscore.model.cox import inner_time_split
from leadscore.model.fit_errors import CandidateFitError, require_both_classes
from leadscore.model.preprocess import Preprocessor, linear_contributions

log = logging.getLogger(__name__)

C_GRID: tuple[float, ...] = (0.01, 0.1, 1.0)
EPS = 1e-12


def _log_loss(y: np.ndarray, p: np.ndarray) -> float:
    p = np.clip(p, EPS, 1 - EPS)
    return float(-np.mean(y * np.log(p) + (1 - y) * np.log1p(-p)))


def _labelled(label: np.ndarray) -> np.ndarray:
    label = np.asarray(label, dtype=float)
    require_both_classes(label, "the training rows")
    return ~np.isnan(label)


def time_slices(as_of: pd.Series, horizon_days: int, valid_share: float) -> tuple[np.ndarray, np.ndarray]:
    """``inner_time_split`` as a candidate's error: the latest ``valid_share`` of dates validate, after an H-day gap.

    Raises:
        CandidateFitError: a part is empty.
    """
    try:
        return inner_time_split(as_of, horizon_days, valid_share)
    except ValueError as exc:
        raise CandidateFitError(str(exc)) from exc


@dataclass
class LogisticModel:
    """L2 logistic regression on the Cox preprocessing."""

    pre: Preprocessor
    clf: LogisticRegression
    design_mean: np.ndarray
    C: float
    grid: list[dict] = field(default_factory=list)
    fit_seconds: float = 0.0

    def predict_proba(self, features: pd.DataFrame) -> np.ndarray:
        """P(label = 1) per row."""
        return self.clf.predict_proba(self.pre.transform(features))[:, 1]

    def contributions(self, features: pd.DataFrame) -> pd.DataFrame:
        """Per original feature, its term of the log-odds relative to the training mean (positive raises)."""
        centered = self.pre.transform(features) - self.design_mean
        return linear_contributions(self.pre, centered, self.clf.coef_[0], features.index)


def fit_logistic(
    features: pd.DataFrame, label: np.ndarray, as_of: pd.Series, horizon_days: int, grid: tuple[float, ...] = C_GRID
) -> LogisticModel:
    """Fit L2 logistic regression on labelled rows, C chosen by log loss on the inner time split.

    Raises:
        CandidateFitError: fewer than two classes among labelled rows or in the inner split's fitting part, or an
            empty inner split. scikit-learn's own errors pass through (training skips the candidate).
    """
    started = time.perf_counter()
    mask = _labelled(label)
    x, y, t = features[mask], np.asarray(label, dtype=float)[mask], pd.Series(as_of)[mask]
    results: list[dict] = []
    if len(grid) > 1:
        fit_m, valid_m = time_slices(t, horizon_days, 0.25)
        require_both_classes(y[fit_m], "the fitting part of the inner time split")
        pre = Preprocessor().fit(x[fit_m])
        xf, xv = pre.transform(x[fit_m]), pre.transform(x[valid_m])
        for c in grid:
            clf = LogisticRegression(C=c, max_iter=1000).fit(xf, y[fit_m])
            results.append({"C": c, "valid_log_loss": _log_loss(y[valid_m], clf.predict_proba(xv)[:, 1])})
        best_c = min(results, key=lambda r: r["valid_log_loss"])["C"]
    else:
        best_c = grid[0]
    pre = Preprocessor().fit(x)
    design = pre.transform(x)
    clf = LogisticRegression(C=best_c, max_iter=1000).fit(design, y)
    return LogisticModel(pre, clf, design.mean(axis=0), best_c, results, time.perf_counter() - started)


@dataclass
class HGBModel:
    """Histogram gradient boosting with native categoricals; contributions by occlusion against a reference lead."""

    pre: Preprocessor
    clf: HistGradientBoostingClassifier
    reference: dict[str, object]
    fit_seconds: float = 0.0

    def frame(self, features: pd.DataFrame) -> pd.DataFrame:
        """The model's input (``Preprocessor.tree_frame``)."""
        return self.pre.tree_frame(features)

    def predict_proba(self, features: pd.DataFrame) -> np.ndarray:
        """P(label = 1) per row."""
        return self.clf.predict_proba(self.frame(features))[:, 1]

    def contributions(self, features: pd.DataFrame) -> pd.DataFrame:
        """Per feature: log-odds of the row minus log-odds with that feature set to the reference lead's value.

        Occlusion is model-agnostic and needs one prediction pass per feature (about 30 passes).
        """
        base = self.frame(features)
        full = logit(np.clip(self.clf.predict_proba(base)[:, 1], EPS, 1 - EPS))
        out = {}
        for col in FEATURE_COLUMNS:
            swapped = base.copy()
            if col in FEATURE_CATEGORICAL:
                swapped[col] = pd.Categorical([self.reference[col]] * len(base), categories=self.pre.levels[col])
            else:
                swapped[col] = float(self.reference[col])
            out[col] = full - logit(np.clip(self.clf.predict_proba(swapped)[:, 1], EPS, 1 - EPS))
        return pd.DataFrame(out, index=features.index)


HGB_PARAMS = {
    "learning_rate": 0.05,
    "max_leaf_nodes": 31,
    "min_samples_leaf": 50,
    "l2_regularization": 1.0,
    "categorical_features": "from_dtype",
}
HGB_MAX_ITER = 400
EARLY_STOP_SHARE = 0.1


def fit_hgb(
    features: pd.DataFrame,
    label: np.ndarray,
    as_of: pd.Series,
    horizon_days: int,
    seed: int = 0,
    max_iter: int | None = None,
) -> HGBModel:
    """Fit HistGradientBoostingClassifier on labelled rows.

    The number of boosting rounds is found by early stopping on a time-ordered slice (the latest 10 % of landmark
    dates, after an H-day gap, as the other candidates validate), then the model is refitted on every labelled row
    with that many rounds. With ``max_iter`` given (a refit with the chosen rounds) there is no early stopping.

    Raises:
        CandidateFitError: fewer than two classes among labelled rows, or no time slice to stop on.
    """
    started = time.perf_counter()
    mask = _labelled(label)
    x, y, t = features[mask], np.asarray(label, dtype=float)[mask], pd.Series(as_of)[mask]
    pre = Preprocessor().fit(x)
    reference: dict[str, object] = {c: float(np.median(x[c].to_numpy(dtype=float))) for c in FEATURE_NUMERIC}
    reference.update({c: float(x[c].astype(float).mode().iloc[0]) for c in FEATURE_FLAGS})
    reference.update({c: pre.levels[c][0] for c in FEATURE_CATEGORICAL})
    model = HGBModel(pre, HistGradientBoostingClassifier(), reference)
    frame = model.frame(x)
    if max_iter is None:
        fit_m, valid_m = time_slices(t, horizon_days, EARLY_STOP_SHARE)
        require_both_classes(y[fit_m], "the fitting part of the early-stopping time split")
        probe = HistGradientBoostingClassifier(
            **HGB_PARAMS, max_iter=HGB_MAX_ITER, early_stopping=True, n_iter_no_change=20, random_state=seed
        )
        probe.fit(frame[fit_m], y[fit_m], X_val=frame[valid_m], y_val=y[valid_m])
        # validation_score_[i] is the (negated) loss after i rounds; keep the best number of rounds
        max_iter = max(1, int(np.argmax(probe.validation_score_)))
    model.clf = HistGradientBoostingClassifier(
        **HGB_PARAMS, max_iter=int(max_iter), early_stopping=False, random_state=seed
    ).fit(frame, y)
    model.fit_seconds = time.perf_counter() - started
    return model
