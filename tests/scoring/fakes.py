"""A small LeadModel-like object and synthetic feature frames for scoring tests and benchmarks.

The dummy model is a plain logistic score on a few features; it implements exactly the methods scoring uses
(``check_features``, ``predict_proba``, ``contributions``, ``percentile``), so the tests do not depend on training.
"""

from __future__ import annotations

import uuid

import numpy as np
import pandas as pd

from leadscore.data.tables import FEATURE_CATEGORICAL, FEATURE_COLUMNS, FEATURE_FLAGS, FEATURE_NUMERIC

SOURCES = ("Inquiry Form", "Source", "Ad-Hoc Data Load", "Vendor Lead", "Event")
COLLEGES = ("College of Engineering", "College of Arts, Letters & Sciences", 'The "Honors" College')
COEFS = {
    "email_open_30d": 0.25,
    "ping_apply": 0.6,
    "events_registered": 0.4,
    "days_as_lead": -0.02,
    "days_since_last_engagement": -0.01,
}
SOURCE_EFFECT = {"Inquiry Form": 1.5, "Event": 0.8}


class ModelSignatureError(ValueError):
    """Features do not match the dummy model."""


class DummyModel:
    """A LeadModel-like object: logistic in a few features, contributions relative to fixed means."""

    kind = "dummy"

    def __init__(self, horizon_days: int = 30, reference_scores: np.ndarray | None = None, p_override=None):
        self.horizon_days = horizon_days
        self.feature_columns = list(FEATURE_COLUMNS)
        self.means = {
            "email_open_30d": 2.0,
            "ping_apply": 0.3,
            "events_registered": 0.2,
            "days_as_lead": 60.0,
            "days_since_last_engagement": 30.0,
        }
        ref = np.linspace(0.0, 0.6, 1001) if reference_scores is None else reference_scores
        self.reference_scores = np.sort(ref)
        self.p_override = p_override
        self.checked = 0

    def check_features(self, features: pd.DataFrame) -> None:
        self.checked += 1
        missing = [c for c in self.feature_columns if c not in features.columns]
        extra = [c for c in features.columns if c not in self.feature_columns]
        if missing or extra:
            raise ModelSignatureError(f"missing {missing}, extra {extra}")

    def contributions(self, features: pd.DataFrame) -> pd.DataFrame:
        out = {}
        for col in self.feature_columns:
            if col in COEFS:
                out[col] = COEFS[col] * (features[col].to_numpy(dtype="float64") - self.means[col])
            elif col == "source":
                out[col] = features[col].map(SOURCE_EFFECT).fillna(0.0).to_numpy(dtype="float64") - 0.3
            else:
                out[col] = np.zeros(len(features))
        return pd.DataFrame(out, index=features.index)

    def predict_proba(self, features: pd.DataFrame) -> np.ndarray:
        if self.p_override is not None:
            return np.asarray(self.p_override, dtype="float64")
        z = -3.0 + self.contributions(features).sum(axis=1).to_numpy()
        return 1.0 / (1.0 + np.exp(-z))

    def percentile(self, p: np.ndarray) -> np.ndarray:
        return np.searchsorted(self.reference_scores, p, side="right") / len(self.reference_scores)


def guids(n: int, seed: int = 0) -> np.ndarray:
    """``n`` distinct lower-case GUID strings, reproducible from ``seed``."""
    rng = np.random.default_rng(seed)
    raw = rng.integers(0, 2**63, size=(n, 2), dtype="int64").astype("uint64")
    return np.array([str(uuid.UUID(int=(int(a) << 64) | int(b))) for a, b in raw], dtype=object)


def make_features(n: int, seed: int = 0) -> pd.DataFrame:
    """A synthetic feature frame (``person_guid``, ``as_of`` and ``FEATURE_COLUMNS``) of ``n`` open leads."""
    rng = np.random.default_rng(seed)
    data: dict[str, object] = {"person_guid": pd.array(guids(n, seed), dtype="string")}
    data["as_of"] = pd.Timestamp("2024-01-07")
    for col in FEATURE_NUMERIC:
        data[col] = rng.poisson(2.0, n).astype("float64")
    data["days_as_lead"] = rng.integers(0, 365, n).astype("float64")
    data["email_open_rate"] = rng.random(n)
    data["email_click_rate"] = rng.random(n) / 3
    for col in FEATURE_FLAGS:
        data[col] = np.zeros(n, dtype="int8")
    data["source"] = pd.array(rng.choice(SOURCES, n), dtype="string")
    college = rng.choice(COLLEGES, n).astype(object)
    college[rng.random(n) < 0.17] = None
    data["college"] = pd.array(college, dtype="string")
    data["college_missing"] = pd.isna(college).astype("int8")
    frame = pd.DataFrame(data)
    assert set(FEATURE_CATEGORICAL) <= set(frame.columns)
    return frame
