"""The classifier candidates of the flat-table mode and their blend.

Candidates: L2 logistic regression and histogram gradient boosting over one-hot text and imputed numbers, and the
LightGBM challenger (native categoricals, a small grid tuned by early stopping). HGB early-stops on a stratified
slice of the rows it is given, so its number of rounds adapts to the table's size and noise.

``blend`` is the mean of the candidates' log-odds. It needs no fitting of its own: its validation predictions are
the mean of the candidates' validation predictions, so it competes on the same rows and the same metric as they do.
On small, noisy exports the candidates' errors are only partly shared and the blend often ranks best.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.special import expit, logit
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from leadscore.model.boosting import TableBooster

BLEND = "blend"
EPS = 1e-9  # probabilities are clipped to [EPS, 1 - EPS] before log-odds: a candidate saying exactly 0 or 1


def preprocessor(numeric: list[str], text: list[str]) -> ColumnTransformer:
    """Median-imputed, standardised numbers (with missing indicators) and one-hot text (levels under 1 % pooled)."""
    return ColumnTransformer(
        [
            (
                "num",
                make_pipeline(
                    SimpleImputer(strategy="median", add_indicator=True, keep_empty_features=True), StandardScaler()
                ),
                numeric,
            ),
            (
                "txt",
                OneHotEncoder(
                    handle_unknown="infrequent_if_exist", min_frequency=0.01, max_categories=50, sparse_output=False
                ),
                text,
            ),
        ]
    )


def candidates(numeric: list[str], text: list[str], seed: int = 0) -> dict[str, Any]:
    """The unfitted candidates by name (scikit-learn classifiers over ``flat_table``'s prepared frame)."""
    return {
        "lgbm": TableBooster(seed=seed),
        "logistic": Pipeline([("pre", preprocessor(numeric, text)), ("clf", LogisticRegression(C=1.0, max_iter=2000))]),
        "hgb": Pipeline(
            [
                ("pre", preprocessor(numeric, text)),
                (
                    "clf",
                    HistGradientBoostingClassifier(
                        learning_rate=0.05,
                        max_iter=1000,
                        min_samples_leaf=30,
                        l2_regularization=1.0,
                        early_stopping=True,
                        scoring="loss",
                        validation_fraction=0.2,
                        n_iter_no_change=30,
                        random_state=seed,
                    ),
                ),
            ]
        ),
    }


def blend_probability(probabilities: list[np.ndarray]) -> np.ndarray:
    """P(1) of the blend: the logistic of the mean of the members' log-odds.

    Raises:
        ValueError: no members.
    """
    if not probabilities:
        raise ValueError("a blend needs at least one member's probabilities")
    z = np.mean([logit(np.clip(np.asarray(p, dtype=float), EPS, 1 - EPS)) for p in probabilities], axis=0)
    return expit(z)


class Blend(ClassifierMixin, BaseEstimator):
    """Fitted members whose log-odds are averaged (``blend_probability``); fitting is the members' own."""

    def __init__(self, members: dict[str, Any]) -> None:
        self.members = members
        self.classes_ = np.array([0.0, 1.0])

    def predict_proba(self, x: Any) -> np.ndarray:
        """Two columns: P(0), P(1)."""
        p = blend_probability([m.predict_proba(x)[:, 1] for m in self.members.values()])
        return np.column_stack([1 - p, p])

    def predict(self, x: Any) -> np.ndarray:
        """0/1 at probability 0.5 (scikit-learn's classifier contract; LeadScore uses ``predict_proba``)."""
        return (self.predict_proba(x)[:, 1] >= 0.5).astype(float)
