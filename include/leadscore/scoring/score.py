"""Score the selected leads with the champion: probability, 1-99 score, tier, reasons, control flag."""

from __future__ import annotations

from datetime import date
from typing import Protocol

import numpy as np
import pandas as pd

from leadscore.model.fit_errors import InvalidProbabilityError
from leadscore.scoring.errors import ScoreValidationError
from leadscore.scoring.outreach import best_contact_list, contact_flags
from leadscore.scoring.reasons import N_REASONS, top_reasons
from leadscore.scoring.tiers import assign_tiers, lead_score_from_percentile
from leadscore.settings import Settings

REASON_COLUMNS: tuple[str, ...] = tuple(f"top_reason_{i}" for i in range(1, N_REASONS + 1))


class ScoringModel(Protocol):
    """What scoring needs from a model (``leadscore.model.lead_model.LeadModel`` provides it)."""

    horizon_days: int

    def check_features(self, features: pd.DataFrame) -> None: ...

    def predict_proba(self, features: pd.DataFrame) -> np.ndarray: ...

    def contributions(self, features: pd.DataFrame) -> pd.DataFrame: ...

    def percentile(self, p: np.ndarray) -> np.ndarray: ...


# Decimals of p_apply_<H>d in the score file. Drift of this week's file is measured against a reference on the same
# grid: most open leads score below 0.001, where 4-decimal rounding moves whole deciles across unrounded cut points.
P_DECIMALS = 4


def published_probability(p: np.ndarray) -> np.ndarray:
    """The probabilities as the score file publishes them (rounded to ``P_DECIMALS``).

    Args:
        p: probabilities in [0, 1].
    Returns:
        A float array of the same shape, rounded.
    """
    return np.round(np.asarray(p, dtype=float), P_DECIMALS)


def probability_column(horizon_days: int) -> str:
    """The name of the probability column for a horizon, e.g. ``p_apply_30d``."""
    return f"p_apply_{horizon_days}d"


def score_file_columns(horizon_days: int) -> list[str]:
    """The columns of the score file (BRIEF §6), in order."""
    return [
        "person_guid",
        "lead_score",
        "lead_tier",
        probability_column(horizon_days),
        *REASON_COLUMNS,
        "model_version",
        "scored_on",
    ]


CONTROL_HASH_KEY = "leadscore-ctrl-1"  # 16 bytes; changing it re-draws the whole control group


def control_flags(person_guid: pd.Series, scored_on: date, share: float) -> np.ndarray:
    """A 0/1 control flag per lead, about ``share`` of them 1, stable for a lead from week to week.

    Membership is a keyed hash of the GUID compared with ``share``: a control lead stays control every week (and a
    larger share keeps the smaller share's leads), so the control group is a clean, lasting holdout whose
    conversion measures the lift the scores bring. Independent of row order and of ``scored_on``.

    Args:
        person_guid: GUIDs of the scored leads.
        scored_on: the scoring date (kept for the call signature; membership does not depend on it).
        share: the control share in [0, 1).
    Returns:
        int8 array aligned with ``person_guid``.
    """
    n = len(person_guid)
    if share <= 0 or n == 0:
        return np.zeros(n, dtype="int8")
    hashed = pd.util.hash_pandas_object(
        person_guid.astype("string").str.lower().reset_index(drop=True), index=False, hash_key=CONTROL_HASH_KEY
    ).to_numpy(dtype="uint64")
    uniform = hashed.astype("float64") / 2.0**64
    return (uniform < share).astype("int8")


def _validate_probabilities(p: np.ndarray, guids: pd.Series, n: int) -> np.ndarray:
    p = np.asarray(p, dtype="float64").reshape(-1)
    if len(p) != n:
        raise ScoreValidationError(f"model returned {len(p)} probabilities for {n} leads; refusing to score")
    bad = ~np.isfinite(p) | (p < 0) | (p > 1)
    if bad.any():
        examples = guids.iloc[np.flatnonzero(bad)[:3]].tolist()
        raise ScoreValidationError(
            f"model returned {int(bad.sum())} of {n} probabilities that are NaN or outside [0, 1] "
            f"(e.g. leads {examples}); nothing is delivered. Check the champion model and the feature build."
        )
    return p


def score_leads(
    model: ScoringModel,
    features: pd.DataFrame,
    model_version: str,
    scored_on: date,
    settings: Settings,
) -> pd.DataFrame:
    """Score the selected leads.

    Args:
        model: the champion (see :class:`ScoringModel`).
        features: selected feature rows (``person_guid`` plus the model's feature columns), one per lead.
        model_version: the registry version of the model, written into every row.
        scored_on: the scoring date (the data interval's end).
        settings: uses ``horizon_days``, ``tier_cuts``, ``control_share`` and, with ``contact_flag`` on,
            ``counselor_capacity``, ``application_value`` and ``contact_cost``.
    Returns:
        One row per lead, in input order, with the score-file columns (``score_file_columns``) and ``control``
        (0/1), plus ``contact_this_week`` (0/1: the week's best contact list among non-control leads,
        ``scoring.outreach``) when ``settings.contact_flag`` is on. ``p_apply_<H>d`` is rounded to 4 decimals; tiers
        and the contact list are ranked on the unrounded probabilities.
    Raises:
        ModelSignatureError: from ``model.check_features`` when the features do not match the model.
        ScoreValidationError: the model's horizon differs from ``settings.horizon_days``, GUIDs repeat, or a
            probability is NaN or outside [0, 1].
    """
    if int(model.horizon_days) != settings.horizon_days:
        raise ScoreValidationError(
            f"the champion predicts within {model.horizon_days} days but settings.horizon_days is "
            f"{settings.horizon_days}; the score file column would change name. Retrain or set LEADSCORE_HORIZON_DAYS"
        )
    if "person_guid" not in features.columns:
        raise ScoreValidationError("features lack the person_guid column")
    guids = features["person_guid"]
    dupes = guids.duplicated()
    if dupes.any():
        raise ScoreValidationError(
            f"{int(dupes.sum())} person_guid values repeat in the features (e.g. {guids[dupes].iloc[0]!r})"
        )
    model_features = features.drop(columns=[c for c in ("person_guid", "as_of") if c in features.columns])
    model.check_features(model_features)
    n = len(features)
    try:
        raw = model.predict_proba(model_features)
    except InvalidProbabilityError as exc:
        raise ScoreValidationError(
            f"{exc} for {n} leads; nothing is delivered. Check the champion model (roll back with "
            "`python -m leadscore champion --set N`) and the feature build."
        ) from exc
    p = _validate_probabilities(raw, guids, n)
    guid_values = guids.to_numpy(dtype=object)
    percentile = np.asarray(model.percentile(p), dtype="float64").reshape(-1)
    if len(percentile) != n or not np.isfinite(percentile).all():
        raise ScoreValidationError(
            f"model.percentile returned {len(percentile)} values for {n} leads, "
            f"{int((~np.isfinite(percentile)).sum())} of them not finite; check the model's reference scores"
        )
    reasons = top_reasons(model.contributions(model_features), model_features)
    data: dict[str, object] = {
        "person_guid": pd.array(guid_values, dtype="string"),
        "lead_score": lead_score_from_percentile(percentile),
        "lead_tier": pd.array(assign_tiers(p, guid_values, settings.tier_cuts), dtype="string"),
        probability_column(settings.horizon_days): published_probability(p),
    }
    for col, values in zip(REASON_COLUMNS, reasons, strict=True):
        data[col] = pd.array(values, dtype="string")
    data["model_version"] = pd.array(np.full(n, str(model_version), dtype=object), dtype="string")
    data["scored_on"] = pd.array(np.full(n, scored_on.isoformat(), dtype=object), dtype="string")
    data["control"] = control_flags(guids, scored_on, settings.control_share)
    if settings.contact_flag:
        eligible = data["control"] == 0
        plan = best_contact_list(
            p[eligible], settings.counselor_capacity, settings.application_value, settings.contact_cost
        )
        data["contact_this_week"] = contact_flags(p, guid_values, eligible, plan)
    return pd.DataFrame(data)
