"""Evaluation metrics on tiny known cases and on perfectly calibrated synthetic scores."""

from __future__ import annotations

import numpy as np

from leadscore.model.evaluate import (
    age_bucket,
    calibration_curve,
    calibration_slope_intercept,
    evaluate_scores,
    lift_by_decile,
    metrics,
    top_decile,
)


def test_auc_and_losses_on_a_known_case():
    y = np.array([0, 0, 1, 1], dtype=float)
    p = np.array([0.1, 0.4, 0.35, 0.8])
    m = metrics(y, p)
    assert m["auc"] == 0.75
    assert np.isclose(m["brier"], np.mean((p - y) ** 2))
    assert np.isclose(m["log_loss"], -np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))


def test_top_decile_lift_when_the_top_holds_every_positive():
    y = np.zeros(100)
    y[:10] = 1
    p = np.linspace(1, 0, 100)
    precision, lift = top_decile(y, p)
    assert precision == 1.0 and lift == 10.0
    table = lift_by_decile(y, p)
    assert table["lift"].iloc[0] == 10.0 and table["lift"].iloc[1:].eq(0).all()


def test_calibration_of_perfectly_calibrated_and_too_low_scores():
    rng = np.random.default_rng(1)
    p = rng.uniform(0.01, 0.6, 40_000)
    y = (rng.uniform(size=p.size) < p).astype(float)
    slope, intercept = calibration_slope_intercept(y, p)
    assert abs(slope - 1) < 0.05 and abs(intercept) < 0.05
    _, intercept_low = calibration_slope_intercept(y, p / 2)
    assert intercept_low > 0.5  # predictions too low -> positive calibration-in-the-large
    curve = calibration_curve(y, p)
    assert len(curve) == 10 and np.allclose(curve["mean_predicted"], curve["observed_rate"], atol=0.03)


def test_buckets_and_single_class_segments():
    assert list(age_bucket(np.array([0, 7.9, 8, 30, 31, 90, 91, 400]))) == [
        "0-7",
        "0-7",
        "8-30",
        "8-30",
        "31-90",
        "31-90",
        "91+",
        "91+",
    ]
    y = np.array([0, 1, 0, 0], dtype=float)
    table = evaluate_scores(y, np.array([0.2, 0.7, 0.1, 0.3]), np.array([1, 2, 100, 200]))
    assert table.loc["0-7", "auc"] == 1.0
    assert np.isnan(table.loc["91+", "auc"]) and table.loc["91+", "n"] == 2
