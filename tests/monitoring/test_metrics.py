"""Each monitoring metric on small known cases: PSI, profiles, realized outcomes, AUC, calibration, control lift."""

from __future__ import annotations

import math
from datetime import date

import numpy as np
import pandas as pd
import pytest

from leadscore.monitoring.drift import (
    ReferenceProfileError,
    column_drift,
    feature_drift,
    hazard_ratio_records,
    numeric_bins,
    numeric_shares,
    psi,
    reference_profile,
    score_drift,
)
from leadscore.monitoring.history import read_history, up_to, upsert_history
from leadscore.monitoring.realized import label_outcomes, mature_dates, realized_metrics
from tests.monitoring.synthetic import hazard_table, make_features


def test_psi_of_identical_distributions_is_zero() -> None:
    assert psi([0.2, 0.3, 0.5], [0.2, 0.3, 0.5]) == 0.0


def test_psi_known_value() -> None:
    # (0.25 - 0.5) ln(0.25/0.5) + (0.75 - 0.5) ln(0.75/0.5)
    expected = 0.25 * math.log(2) + 0.25 * math.log(1.5)
    assert psi([0.5, 0.5], [0.25, 0.75]) == pytest.approx(expected, rel=1e-12)
    assert psi([0.5, 0.5], [0.25, 0.75]) == pytest.approx(0.274653, abs=1e-6)


def test_psi_rejects_mismatched_vectors() -> None:
    with pytest.raises(ValueError, match="same non-zero length"):
        psi([0.5, 0.5], [1.0])


def test_numeric_bins_are_deciles_and_shares_equal() -> None:
    values = np.arange(1, 101, dtype=float)
    bins = numeric_bins(values)
    assert len(bins) == 9
    shares, missing = numeric_shares(values, bins)
    assert missing == 0.0
    assert np.allclose(shares, 0.1)


def test_numeric_drift_same_data_zero_and_shift_large() -> None:
    rng = np.random.default_rng(1)
    x = rng.normal(size=5000)
    spec = reference_profile(pd.DataFrame({"pings": x}), x)["features"]["pings"]
    assert column_drift("pings", spec, pd.Series(x))["psi"] == pytest.approx(0.0, abs=1e-12)
    assert column_drift("pings", spec, pd.Series(x + 1.0))["psi"] > 0.25


def test_missing_share_counts_in_psi_and_is_reported() -> None:
    x = np.arange(100, dtype=float)
    spec = reference_profile(pd.DataFrame({"pings": x}), x)["features"]["pings"]
    now = x.copy()
    now[:30] = np.nan
    d = column_drift("pings", spec, pd.Series(now))
    assert d["missing_ref"] == 0.0 and d["missing_now"] == pytest.approx(0.3)
    assert d["psi"] > 0.25  # a 30 % missing bin against ~0 % is a large shift


def test_categorical_drift_and_unseen_labels() -> None:
    ref = reference_profile(pd.DataFrame({"source": pd.array(["A", "A", "B", "B"], dtype="string")}), np.zeros(4))[
        "features"
    ]["source"]
    assert ref == {"kind": "categorical", "shares": {"A": 0.5, "B": 0.5}, "missing": 0.0}
    same = column_drift("source", ref, pd.Series(["B", "A"], dtype="string"))
    assert same["psi"] == pytest.approx(0.0, abs=1e-12) and same["unseen"] == []
    new = column_drift("source", ref, pd.Series(["A", "C", "C", "B"], dtype="string"))
    assert new["unseen"] == ["C"]
    assert new["psi"] > 1.0


def test_feature_drift_sorted_and_names_absent_columns() -> None:
    rng = np.random.default_rng(2)
    train = make_features(2000, rng)
    profile = reference_profile(train, rng.random(2000))
    now = make_features(2000, rng, shift=0.5)
    table = feature_drift(profile, now)
    assert list(table["psi"]) == sorted(table["psi"], reverse=True)
    assert table.iloc[0]["feature"].startswith("email")
    stable = table.set_index("feature").loc["pings", "psi"]
    assert stable < 0.05
    with pytest.raises(ReferenceProfileError, match="lack the profiled columns \\['pings'\\]"):
        feature_drift(profile, now.drop(columns=["pings"]))


def test_score_drift_and_malformed_profile() -> None:
    p = np.linspace(0.01, 0.5, 1000)
    profile = reference_profile(pd.DataFrame({"pings": p}), p)
    out = score_drift(profile, p)
    assert out["psi"] == pytest.approx(0.0, abs=1e-12)
    assert len(out["current_shares"]) == len(out["bins"]) + 1
    bad = {"score": {"kind": "numeric", "bins": [0.1, 0.2], "shares": [1.0]}}
    with pytest.raises(ReferenceProfileError, match="expected one more share"):
        score_drift(bad, p)
    with pytest.raises(ValueError, match="2 scores for 3 feature rows"):
        reference_profile(pd.DataFrame({"pings": [1.0, 2.0, 3.0]}), np.zeros(2))


def test_hazard_ratio_records_scale_the_interval_to_the_contrast() -> None:
    recs = hazard_ratio_records(hazard_table())
    first = recs[0]
    assert first["label"] == "email_open" and first["hazard_ratio"] == pytest.approx(3.31)
    power = math.log(3.31) / math.log(1.82)
    assert first["lower"] == pytest.approx(1.6**power) and first["upper"] == pytest.approx(2.0**power)
    assert first["lower"] < first["hazard_ratio"] < first["upper"]


def test_mature_dates_pick_one_date_per_lag() -> None:
    weekly = [date(2025, 1, 5 + 7 * i) for i in range(4)] + [date(2025, 2, 2), date(2025, 2, 9), date(2025, 2, 16)]
    chosen = mature_dates(weekly, date(2025, 2, 16), 14)
    # lag 1: latest date <= Feb 2 and > Jan 19; lag 2: <= Jan 19 and > Jan 5; lag 3: <= Jan 5 and > Dec 22
    assert chosen == [(1, date(2025, 2, 2)), (2, date(2025, 1, 19)), (3, date(2025, 1, 5))]
    assert mature_dates(weekly, date(2025, 1, 12), 14) == []


def test_label_outcomes_window_boundaries() -> None:
    t0 = pd.Timestamp("2025-01-05")
    scores = pd.DataFrame(
        {
            "person_guid": ["a", "b", "c", "d", "e", "f"],
            "p_apply_14d": [0.1] * 6,
            "lead_tier": ["A", "B", "C", "D", "D", "D"],
        }
    )
    leads = pd.DataFrame(
        {
            "person_guid": ["a", "b", "c", "d", "e"],
            "application_created": pd.Series(
                [
                    t0,
                    t0 + pd.Timedelta(seconds=1),
                    t0 + pd.Timedelta(days=14),
                    t0 + pd.Timedelta(days=14, seconds=1),
                    pd.NaT,
                ],
                dtype="datetime64[us]",
            ),
        }
    )
    out, excluded = label_outcomes(scores, leads, date(2025, 1, 5), 14)
    assert excluded == {"excluded_missing": 1, "excluded_applied": 1}  # f unknown; a applied before scoring
    assert dict(zip(out["person_guid"], out["applied"], strict=True)) == {"b": 1, "c": 1, "d": 0, "e": 0}


def test_realized_auc_with_known_outcomes() -> None:
    y = np.array([0, 0, 1, 1])
    p = np.array([0.1, 0.4, 0.35, 0.8])
    m = realized_metrics(y, p)
    assert m["auc"] == pytest.approx(0.75)
    assert m["n"] == 4 and m["positives"] == 2
    assert m["log_loss"] == pytest.approx(-np.mean(np.log([0.9, 0.6, 0.35, 0.8])))
    one_class = realized_metrics(np.zeros(3), np.array([0.1, 0.2, 0.3]))
    assert math.isnan(one_class["auc"])


def test_calibration_slope_and_intercept() -> None:
    rng = np.random.default_rng(3)
    z = rng.normal(-2, 1, 40_000)
    truth = 1 / (1 + np.exp(-z))
    y = (rng.random(z.size) < truth).astype(int)
    good = realized_metrics(y, truth)
    assert good["calibration_slope"] == pytest.approx(1.0, abs=0.08)
    assert good["calibration_intercept"] == pytest.approx(0.0, abs=0.15)
    overconfident = 1 / (1 + np.exp(-2 * z))  # twice the log-odds: slope about 0.5
    bad = realized_metrics(y, overconfident)
    assert bad["calibration_slope"] == pytest.approx(0.5, abs=0.06)


def test_tier_a_and_control_group_lift() -> None:
    # 10 control leads, 1 applied (10 %); 10 scored leads, 3 applied (30 %): lift 3.0
    y = np.array([1] + [0] * 9 + [1, 1, 1] + [0] * 7)
    control = np.array([1] * 10 + [0] * 10)
    tier = np.array(["A", "A"] + ["D"] * 8 + ["A", "A", "B"] + ["D"] * 7, dtype=object)
    p = np.linspace(0.05, 0.5, 20)
    m = realized_metrics(y, p, tier, control)
    assert m["control_n"] == 10
    assert m["control_conversion"] == pytest.approx(0.1)
    assert m["scored_conversion"] == pytest.approx(0.3)
    assert m["control_lift"] == pytest.approx(3.0)
    assert m["tier_a_n"] == 4 and m["tier_a_conversion"] == pytest.approx(0.75)
    assert m["tier_a_control_conversion"] == pytest.approx(0.5)
    assert m["tier_a_scored_conversion"] == pytest.approx(1.0)
    no_control = realized_metrics(y, p, tier, np.zeros(20))
    assert math.isnan(no_control["control_lift"]) and math.isnan(no_control["control_conversion"])


def test_history_upsert_is_idempotent(tmp_path) -> None:
    path = tmp_path / "history.parquet"
    upsert_history(path, {"scored_on": date(2025, 1, 12), "realized_auc": 0.8, "status": "ok"})
    upsert_history(path, {"scored_on": date(2025, 1, 5), "realized_auc": 0.7, "status": "ok"})
    both = upsert_history(path, {"scored_on": "2025-01-12", "realized_auc": 0.6, "status": "warning"})
    assert list(both["scored_on"]) == ["2025-01-05", "2025-01-12"]
    again = read_history(path)
    assert list(again["realized_auc"]) == [0.7, 0.6] and list(again["status"]) == ["ok", "warning"]
    assert list(up_to(again, date(2025, 1, 11))["scored_on"]) == ["2025-01-05"]
