"""The ensemble candidate: the plain mean of the fitted candidates' probabilities, with no weights fitted anywhere.

Why a plain mean: the candidates sit near the best forecast the features allow (bench/quality.py's observable
bound), and their errors differ (a proportional-hazards Cox model, a linear logistic model, two tree ensembles). The
mean of their probabilities ranks and scores better than any one of them on every seed measured (seeds 7/8/9 at
20,000 leads: median AUC ratio to the ceiling 0.976 against 0.975 for the best single candidate, log-loss ratio 1.087
against 1.092). A blend whose weights or Platt map are fitted on the holdout's time halves did worse (the map fitted
on one half does not carry to the other), so nothing here is fitted: the mean is judged on the holdout like every
other candidate, and chosen only when its holdout log loss is the best.

Reasons: the mean of the members' per-feature contributions, over the members whose contributions are exact and
additive on the log scale (Cox: log-hazard; logistic and LightGBM: log-odds; at the few-percent probabilities of a
30-day application the two scales agree to first order, log p ~ log H). The HGB member's contributions are by
occlusion, one prediction pass per feature, too slow for a weekly run over every open lead; LightGBM, the same model
family on the same features, stands in for it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from leadscore.model.lead_model import LeadModel

ENSEMBLE = "ensemble"
MIN_MEMBERS = 2
# Members whose contributions are exact, additive and cheap (one pass); see the module docstring.
REASON_MEMBERS = ("cox", "logistic", "lgbm")


@dataclass
class EnsembleModel:
    """The mean of fitted LeadModels' probabilities (each with its own calibrator), behind the candidate API.

    Attributes:
        members: the member LeadModels by kind, in candidate order.
        fit_seconds: the sum of the members' fit times.
    """

    members: dict[str, LeadModel]
    fit_seconds: float = 0.0

    def predict_proba(self, features: pd.DataFrame) -> np.ndarray:
        """Mean of the members' P(apply within H days); each member's probabilities are checked (never clipped).

        Raises:
            InvalidProbabilityError: a member answers NaN or a value outside [0, 1].
        """
        return np.mean([m.predict_proba(features) for m in self.members.values()], axis=0)

    def contributions(self, features: pd.DataFrame) -> pd.DataFrame:
        """Mean per-feature contribution over the members in ``REASON_MEMBERS`` (all members when none is).

        Returns:
            One column per feature column, same index as ``features``.
        """
        kinds = [k for k in self.members if k in REASON_MEMBERS] or list(self.members)
        frames = [self.members[k].contributions(features) for k in kinds]
        return sum(frames[1:], frames[0]) / len(frames)


def ensemble_of(candidates: dict[str, LeadModel], horizon_days: int, training_features: pd.DataFrame) -> LeadModel:
    """The ensemble LeadModel of fitted candidates, with reference scores from (a sample of) the training rows.

    Args:
        candidates: fitted LeadModels by kind (at least ``MIN_MEMBERS``). horizon_days: H.
        training_features: the feature rows of the block the members were fitted on.
    Returns:
        A LeadModel of kind ``"ensemble"``.
    Raises:
        ValueError: fewer than ``MIN_MEMBERS`` candidates, or members of different horizons.
        InvalidProbabilityError: a member's probabilities are NaN or outside [0, 1].
    """
    if len(candidates) < MIN_MEMBERS:
        raise ValueError(f"an ensemble needs at least {MIN_MEMBERS} fitted candidates; got {sorted(candidates)}")
    horizons = {m.horizon_days for m in candidates.values()}
    if horizons != {int(horizon_days)}:
        raise ValueError(
            f"ensemble members predict over {sorted(horizons)} days; the ensemble's horizon is {horizon_days}"
        )
    impl = EnsembleModel(dict(candidates), sum(float(getattr(m.impl, "fit_seconds", 0.0)) for m in candidates.values()))
    return LeadModel.wrap(ENSEMBLE, impl, horizon_days, training_features)
