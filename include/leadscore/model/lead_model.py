"""The model object that scoring uses: whichever candidate won, plus its preprocessing, behind one API."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from leadscore.data.tables import FEATURE_COLUMNS
from leadscore.model.boosting import LGBMModel
from leadscore.model.calibrate import Calibrator
from leadscore.model.challengers import HGBModel, LogisticModel
from leadscore.model.cox import CoxModel
from leadscore.model.fit_errors import InvalidProbabilityError, check_probabilities
from leadscore.model.preprocess import ModelSignatureError, check_feature_frame

if TYPE_CHECKING:  # the ensemble module imports this one
    from leadscore.model.ensemble import EnsembleModel

__all__ = ["KINDS", "InvalidProbabilityError", "LeadModel", "ModelSignatureError"]

KINDS = ("cox", "logistic", "hgb", "lgbm")
SERVED_KINDS = (*KINDS, "ensemble")  # the ensemble (model.ensemble) holds fitted LeadModels of the kinds above
REFERENCE_SAMPLE = 10_000


@dataclass
class LeadModel:
    """A fitted lead-propensity model (picklable).

    Attributes:
        kind: "cox" | "logistic" | "hgb" | "lgbm" | "ensemble".
        horizon_days: H of the probability it predicts.
        feature_columns: the input columns, ``list(FEATURE_COLUMNS)``.
        reference_scores: sorted sample (at most 10,000) of training-block probabilities, for percentiles.
        impl: the fitted candidate (CoxModel, LogisticModel, HGBModel, LGBMModel, or model.ensemble.EnsembleModel).
        calibrator: the recalibration fitted on the holdout block, or None (the candidate's own probabilities).
        trained_on: the window and counts of the rows the model was fitted on (``train.refit_chosen`` fills it).
    """

    kind: str
    horizon_days: int
    feature_columns: list[str]
    reference_scores: np.ndarray
    impl: CoxModel | LogisticModel | HGBModel | LGBMModel | EnsembleModel
    calibrator: Calibrator | None = None
    trained_on: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def wrap(
        cls,
        kind: str,
        impl: CoxModel | LogisticModel | HGBModel | LGBMModel | EnsembleModel,
        horizon_days: int,
        training_features: pd.DataFrame,
        seed: int = 0,
    ) -> LeadModel:
        """Wrap a fitted candidate and compute reference scores on (a sample of) its training rows.

        Raises:
            ValueError: unknown kind.
        """
        if kind not in SERVED_KINDS:
            raise ValueError(f"unknown model kind {kind!r}; expected one of {SERVED_KINDS}")
        rows = training_features
        if len(rows) > REFERENCE_SAMPLE:
            idx = np.random.default_rng(seed).choice(len(rows), REFERENCE_SAMPLE, replace=False)
            rows = rows.iloc[np.sort(idx)]
        model = cls(kind, int(horizon_days), list(FEATURE_COLUMNS), np.array([]), impl)
        model.reference_scores = np.sort(model.predict_proba(rows))
        return model

    def check_features(self, features: pd.DataFrame) -> None:
        """Raise ModelSignatureError naming missing/extra columns and non-numeric dtypes of numeric features."""
        check_feature_frame(features, self.feature_columns)

    def predict_proba(self, features: pd.DataFrame) -> np.ndarray:
        """P(apply within H days | open at the scoring date, features), one per row, in [0, 1].

        Raises:
            ModelSignatureError: the frame does not have the feature columns.
            InvalidProbabilityError: the fitted model answers NaN or a value outside [0, 1] (never clipped: a broken
                model must stop the run, not look plausible).
            ValueError: a feature column holds missing values.
        """
        self.check_features(features)
        p = check_probabilities(self.impl.predict_proba(features[self.feature_columns]), f"the {self.kind} model")
        if self.calibrator is not None:
            p = check_probabilities(self.calibrator.apply(p), f"the {self.kind} model's {self.calibrator.method} map")
        return p

    def contributions(self, features: pd.DataFrame) -> pd.DataFrame:
        """Per original feature column, how much it raises (positive) or lowers the lead's log-hazard (Cox) or
        log-odds (challengers) relative to the training mean / reference lead. Same index as ``features``."""
        self.check_features(features)
        return self.impl.contributions(features[self.feature_columns])

    def percentile(self, p: np.ndarray) -> np.ndarray:
        """Share of the training reference scores strictly below each ``p``, in [0, 1]."""
        if len(self.reference_scores) == 0:
            raise ValueError("the model has no reference scores; build it with LeadModel.wrap")
        below = np.searchsorted(self.reference_scores, np.asarray(p, dtype=float), side="left")
        return below / len(self.reference_scores)
