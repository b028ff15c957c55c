"""Filled-in values count as missing in the drift table, so a jump in missing data warns (college "Unknown")."""

from __future__ import annotations

import numpy as np
import pandas as pd

from leadscore.data.features import MISSING_COLLEGE, features_as_of
from leadscore.monitoring.drift import feature_drift, missing_shares, reference_profile
from leadscore.monitoring.gates import MonitoringThresholds, assess
from tests.data.test_features import T0, make_interactions, make_leads


def week_features(n: int, missing_share: float, seed: int) -> pd.DataFrame:
    """Features built by the real feature build for ``n`` leads, ``missing_share`` of them without a college."""
    rng = np.random.default_rng(seed)
    rows = [
        {
            "person_guid": f"p{seed}-{i:04d}",
            "origin_date": T0 - pd.Timedelta(days=int(rng.integers(1, 300))),
            "college": None if rng.random() < missing_share else str(rng.choice(["Arts", "Science"])),
        }
        for i in range(n)
    ]
    sends = [(r["person_guid"], "email_sent", "m1", T0 - pd.Timedelta(hours=1)) for r in rows[: n // 2]]
    return features_as_of(make_leads(rows), make_interactions(sends), T0)


def test_a_jump_in_unknown_colleges_warns() -> None:
    reference = week_features(2000, 0.17, seed=1)
    assert reference["college"].isna().sum() == 0  # the feature build fills college in ...
    assert (reference["college"] == MISSING_COLLEGE).mean() > 0.1  # ... with "Unknown"
    profile = reference_profile(reference, np.full(len(reference), 0.05))
    assert profile["features"]["college"]["missing_flag"] == "college_missing"
    assert 0.14 < profile["features"]["college"]["missing"] < 0.20
    assert "Unknown" not in profile["features"]["college"]["shares"]

    now = week_features(2000, 0.45, seed=2)
    table = feature_drift(profile, now).set_index("feature")
    assert 0.25 < table.loc["college", "missing_jump"] < 0.31
    assert 0.42 < missing_shares(now)["college"] < 0.48
    # the e-mail rates of never-e-mailed leads are filled with 0: missing too, and steady here (half are e-mailed)
    assert abs(table.loc["email_open_rate", "missing_jump"]) < 0.05
    _, warnings = assess({"missing_jump": table["missing_jump"].to_dict()}, MonitoringThresholds())
    assert any("missing values jumped" in w and "college (+2" in w for w in warnings), warnings

    steady = feature_drift(profile, week_features(2000, 0.17, seed=3)).set_index("feature")
    _, calm = assess({"missing_jump": steady["missing_jump"].to_dict()}, MonitoringThresholds())
    assert not any("missing values jumped" in w for w in calm)


def test_profiles_stored_before_compare_as_they_were_built() -> None:
    reference = week_features(500, 0.17, seed=4)
    profile = reference_profile(reference, np.full(len(reference), 0.05))
    for spec in profile["features"].values():  # an older profile: no flag, "Unknown" was a label
        spec.pop("missing_flag", None)
    profile["features"]["college"] = {
        "kind": "categorical",
        "shares": {"Arts": 0.4, "Science": 0.4, "Unknown": 0.2},
        "missing": 0.0,
    }
    table = feature_drift(profile, week_features(500, 0.45, seed=5)).set_index("feature")
    assert table.loc["college", "missing_now"] == 0.0  # compared as built: no false jump from the change itself
