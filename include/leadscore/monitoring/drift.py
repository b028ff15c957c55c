"""Drift: population stability (PSI) of each feature and of the score against the champion's training reference.

A *reference profile* is computed once at training time (:func:`reference_profile`) and stored with the model. It is
plain JSON-able data::

    {"version": 1,
     "n_rows": 123456,
     "features": {"email_sent": {"kind": "numeric", "bins": [cut points], "shares": [...], "missing": 0.0},
                  "source": {"kind": "categorical", "shares": {"Inquiry": 0.3, ...}, "missing": 0.01}, ...},
     "score": {"kind": "numeric", "bins": [...], "shares": [...], "missing": 0.0},
     "hazard_ratios": [{"label": ..., "hazard_ratio": ..., "lower": ..., "upper": ...}, ...]}   # optional

A feature whose missing values the feature build fills in (``data.tables.FILLED_IN``: college "Unknown", the e-mail
rates of leads never e-mailed, the engagement recency of leads never engaged) is profiled with those rows as missing,
read from the feature's flag (``college_missing``, ...), and its spec names the flag (``"missing_flag"``), so the
weekly missing share is measured the same way. Specs without the key (profiles stored before) are compared as
they were built.

Numeric bins are the inner cut points of (at most) deciles; bin ``i`` holds values in ``(bins[i-1], bins[i]]``, the
first bin everything ``<= bins[0]`` and the last everything ``> bins[-1]``. ``shares`` are over the non-missing
values; ``missing`` is the share of missing values, which PSI treats as one more bin.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from leadscore.data.tables import FEATURE_CATEGORICAL, FEATURE_COLUMNS, FILLED_IN

PROFILE_VERSION = 1
N_BINS = 10
PSI_EPS = 1e-4  # floor of a share inside the PSI log, so an empty bin gives a large but finite term


class ReferenceProfileError(ValueError):
    """A reference profile is malformed (missing keys, shares that do not match bins)."""


def psi(expected: np.ndarray, actual: np.ndarray, eps: float = PSI_EPS) -> float:
    """Population stability index ``sum((a - e) * ln(a / e))`` of two share vectors over the same bins.

    Args:
        expected: reference shares (sums to 1).
        actual: current shares (sums to 1), same length.
        eps: shares are floored at this before the log (empty bins).
    Returns:
        PSI >= 0; 0 when the distributions are identical.
    Raises:
        ValueError: the vectors differ in length or are empty.
    """
    e = np.asarray(expected, dtype=float)
    a = np.asarray(actual, dtype=float)
    if e.shape != a.shape or e.size == 0:
        raise ValueError(f"PSI needs two share vectors of the same non-zero length, got {e.shape} and {a.shape}")
    e = np.clip(e, eps, None)
    a = np.clip(a, eps, None)
    return float(np.sum((a - e) * np.log(a / e)))


def numeric_bins(values: np.ndarray, n_bins: int = N_BINS) -> list[float]:
    """Inner cut points of (at most) ``n_bins`` equal-count bins of the finite ``values`` (duplicates merged)."""
    x = np.asarray(values, dtype=float)
    x = x[np.isfinite(x)]
    if x.size == 0:
        return []
    cuts = np.quantile(x, np.linspace(0, 1, n_bins + 1)[1:-1])
    return [float(c) for c in np.unique(cuts)]


def numeric_shares(values: np.ndarray, bins: list[float]) -> tuple[np.ndarray, float]:
    """Shares of the non-missing ``values`` per bin of ``bins`` (len(bins)+1 bins), and the missing share."""
    x = np.asarray(values, dtype=float)
    missing = ~np.isfinite(x)
    n = x.size
    counts = np.bincount(
        np.searchsorted(np.asarray(bins, dtype=float), x[~missing], side="left"), minlength=len(bins) + 1
    )
    present = n - int(missing.sum())
    shares = counts / present if present else np.zeros(len(bins) + 1)
    return shares, (float(missing.sum()) / n if n else 0.0)


def categorical_shares(values: pd.Series) -> tuple[dict[str, float], float]:
    """Share of each label among the non-missing ``values``, and the missing share."""
    s = pd.Series(values, dtype="string")
    n = len(s)
    present = s.dropna()
    counts = present.value_counts()
    shares = {str(k): float(v) / len(present) for k, v in counts.items()} if len(present) else {}
    return shares, (float(n - len(present)) / n if n else 0.0)


def _is_categorical(name: str, column: pd.Series) -> bool:
    return name in FEATURE_CATEGORICAL or not (
        pd.api.types.is_numeric_dtype(column) or pd.api.types.is_bool_dtype(column)
    )


def _numeric_values(column: pd.Series) -> np.ndarray:
    return pd.to_numeric(column, errors="coerce").astype("Float64").to_numpy(dtype=float, na_value=np.nan)


def profile_column(name: str, column: pd.Series) -> dict[str, Any]:
    """The reference profile of one column (numeric bins and shares, or categorical label shares)."""
    if _is_categorical(name, column):
        shares, missing = categorical_shares(column)
        return {"kind": "categorical", "shares": shares, "missing": missing}
    values = _numeric_values(column)
    bins = numeric_bins(values)
    shares, missing = numeric_shares(values, bins)
    return {"kind": "numeric", "bins": bins, "shares": [float(s) for s in shares], "missing": missing}


def _filled_as_missing(features: pd.DataFrame, name: str, flag: str | None) -> pd.Series:
    """``features[name]`` with the rows where ``flag`` is 1 set to missing (the value there was filled in)."""
    column = features[name]
    if flag is None:
        return column
    filled = pd.to_numeric(features[flag], errors="coerce").fillna(0).to_numpy(dtype=float) == 1
    return column.mask(pd.Series(filled, index=column.index))


def reference_profile(
    features: pd.DataFrame, scores: np.ndarray, hazard_ratios: pd.DataFrame | None = None
) -> dict[str, Any]:
    """The training reference that weekly drift is measured against; store it with the model.

    Args:
        features: the training rows' feature frame (every column of ``FEATURE_COLUMNS`` that is present is profiled).
        scores: the model's probabilities on those rows.
        hazard_ratios: optional ``model.interpret.hazard_ratios`` table, kept for the weekly report's chart.
    Returns:
        A JSON-able dict (see the module doc).
    Raises:
        ValueError: no rows, scores of another length, or no feature column present.
    """
    scores = np.asarray(scores, dtype=float).reshape(-1)
    if len(features) == 0:
        raise ValueError("reference_profile needs at least one training row, got 0")
    if len(scores) != len(features):
        raise ValueError(f"reference_profile got {len(scores)} scores for {len(features)} feature rows")
    names = [c for c in FEATURE_COLUMNS if c in features.columns]
    if not names:
        raise ValueError(f"reference_profile found none of the feature columns {list(FEATURE_COLUMNS)[:5]}...")
    profile: dict[str, Any] = {
        "version": PROFILE_VERSION,
        "n_rows": len(features),
        "features": {name: _profile_feature(features, name) for name in names},
        "score": profile_column("score", pd.Series(scores)),
    }
    if hazard_ratios is not None and len(hazard_ratios):
        profile["hazard_ratios"] = hazard_ratio_records(hazard_ratios)
    return profile


def _profile_feature(features: pd.DataFrame, name: str) -> dict[str, Any]:
    flag = FILLED_IN.get(name)
    flag = flag if flag in features.columns else None
    spec = profile_column(name, _filled_as_missing(features, name, flag))
    if flag:
        spec["missing_flag"] = flag
    return spec


def hazard_ratio_records(table: pd.DataFrame) -> list[dict[str, Any]]:
    """Compact records of a hazard-ratio table (``model.interpret.hazard_ratios``) for storage and charts.

    The ratio shown is ``hr_contrast`` (90th percentile vs median for numeric features) when present; its 95 % CI is
    the per-unit CI raised to the same power, since ``exp(c * coef)`` has the interval ``exp(c * [lo, hi])``.
    """
    labels = table["covariate"] if "covariate" in table else table["feature"]
    per_unit = table["hazard_ratio"].to_numpy(dtype=float)
    shown = table["hr_contrast"].to_numpy(dtype=float) if "hr_contrast" in table else per_unit
    with np.errstate(divide="ignore", invalid="ignore"):
        power = np.where(np.abs(np.log(per_unit)) > 1e-12, np.log(shown) / np.log(per_unit), 1.0)
    out = []
    for i in range(len(table)):
        rec: dict[str, Any] = {"label": str(labels.iloc[i]), "hazard_ratio": float(shown[i])}
        if "hr_lower_95" in table and "hr_upper_95" in table:
            lo = float(table["hr_lower_95"].iloc[i]) ** float(power[i])
            hi = float(table["hr_upper_95"].iloc[i]) ** float(power[i])
            rec.update(lower=min(lo, hi), upper=max(lo, hi))
        out.append(rec)
    return out


def _check_spec(name: str, spec: Mapping[str, Any]) -> str:
    if "shares" not in spec:
        raise ReferenceProfileError(f"reference profile of {name!r} has no 'shares'")
    kind = spec.get("kind") or ("numeric" if "bins" in spec else "categorical")
    if kind == "numeric" and len(spec["shares"]) != len(spec.get("bins", [])) + 1:
        raise ReferenceProfileError(
            f"reference profile of {name!r} has {len(spec['shares'])} shares for {len(spec.get('bins', []))} cut "
            "points; expected one more share than cut points"
        )
    return kind


def column_drift(name: str, spec: Mapping[str, Any], column: pd.Series) -> dict[str, Any]:
    """PSI of one column against its reference spec, with missing shares and (categorical) unseen labels.

    Returns:
        ``{"feature", "psi", "missing_ref", "missing_now", "unseen": [labels]}``.
    Raises:
        ReferenceProfileError: the spec is malformed.
    """
    kind = _check_spec(name, spec)
    m_ref = float(spec.get("missing", 0.0))
    unseen: list[str] = []
    if kind == "numeric":
        shares, m_now = numeric_shares(_numeric_values(column), list(spec.get("bins", [])))
        expected = np.append(np.asarray(spec["shares"], dtype=float) * (1 - m_ref), m_ref)
        actual = np.append(shares * (1 - m_now), m_now)
    else:
        now, m_now = categorical_shares(column)
        ref = dict(spec["shares"])
        labels = sorted(set(ref) | set(now))
        unseen = sorted(set(now) - set(ref))
        expected = np.append([ref.get(k, 0.0) * (1 - m_ref) for k in labels], m_ref)
        actual = np.append([now.get(k, 0.0) * (1 - m_now) for k in labels], m_now)
    return {"feature": name, "psi": psi(expected, actual), "missing_ref": m_ref, "missing_now": m_now, "unseen": unseen}


def feature_drift(profile: Mapping[str, Any], features: pd.DataFrame) -> pd.DataFrame:
    """Drift of every profiled feature present in ``features``, largest PSI first.

    Returns:
        Columns feature, psi, missing_ref, missing_now, missing_jump (now - ref), unseen (list of labels).
    Raises:
        ReferenceProfileError: the profile has no ``features`` mapping, or a profiled feature or its missing-value
            flag is absent from ``features`` (the scoring input lost a column).
    """
    specs = profile.get("features")
    if not isinstance(specs, Mapping):
        raise ReferenceProfileError("reference profile has no 'features' mapping; rebuild it with reference_profile")
    absent = [name for name in specs if name not in features.columns]
    if absent:
        raise ReferenceProfileError(f"this week's feature rows lack the profiled columns {absent}")
    flags = {name: spec.get("missing_flag") for name, spec in specs.items()}
    lost = sorted({f for f in flags.values() if f and f not in features.columns})
    if lost:
        raise ReferenceProfileError(f"this week's feature rows lack the missing-value flags {lost}")
    rows = [column_drift(name, spec, _filled_as_missing(features, name, flags[name])) for name, spec in specs.items()]
    out = pd.DataFrame(rows, columns=["feature", "psi", "missing_ref", "missing_now", "unseen"])
    out["missing_jump"] = out["missing_now"] - out["missing_ref"]
    return out.sort_values("psi", ascending=False, kind="stable").reset_index(drop=True)


def score_drift(profile: Mapping[str, Any], scores: np.ndarray) -> dict[str, Any]:
    """PSI of this week's probabilities against the reference score distribution, plus both share vectors.

    Returns:
        ``{"psi", "bins", "reference_shares", "current_shares"}``.
    Raises:
        ReferenceProfileError: the profile has no numeric ``score`` spec.
    """
    spec = profile.get("score")
    if not isinstance(spec, Mapping) or _check_spec("score", spec) != "numeric":
        raise ReferenceProfileError("reference profile has no numeric 'score' spec; rebuild it with reference_profile")
    drift = column_drift("score", spec, pd.Series(np.asarray(scores, dtype=float)))
    current, _ = numeric_shares(np.asarray(scores, dtype=float), list(spec["bins"]))
    return {
        "psi": drift["psi"],
        "bins": list(spec["bins"]),
        "reference_shares": list(spec["shares"]),
        "current_shares": [float(s) for s in current],
    }


def missing_shares(features: pd.DataFrame) -> dict[str, float]:
    """Share of missing values per feature column present (NaN, NA, None, and filled-in values marked by their
    ``FILLED_IN`` flag)."""
    cols = [c for c in FEATURE_COLUMNS if c in features.columns]
    if not len(features):
        return {c: 0.0 for c in cols}
    flag = {c: FILLED_IN.get(c) if FILLED_IN.get(c) in features.columns else None for c in cols}
    return {c: float(_filled_as_missing(features, c, flag[c]).isna().mean()) for c in cols}
