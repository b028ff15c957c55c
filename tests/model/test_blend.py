"""The blend candidate: the weight and Platt map found on the holdout, judged cross-fitted, parameters round-trip."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.special import expit, logit

from leadscore.data.tables import FEATURE_COLUMNS
from leadscore.model.blend import BlendError, Stack, cross_fitted_stack, fit_stack, params_of, split_params


def _two_noisy_views(n: int = 8000, seed: int = 0):
    """Two scores that each see the truth through independent noise: their average beats either."""
    rng = np.random.default_rng(seed)
    truth = rng.normal(-3.0, 1.2, n)
    y = (rng.uniform(size=n) < expit(truth)).astype(float)
    a = expit(truth + rng.normal(0, 0.8, n))
    b = expit(truth + rng.normal(0, 0.8, n))
    return y, np.column_stack([a, b]), np.sort(rng.uniform(0, 100, n))


def _loss(y, p):
    return float(-np.mean(y * np.log(p) + (1 - y) * np.log1p(-p)))


def test_two_equally_good_views_get_a_middle_weight_and_a_lower_cross_fitted_loss():
    y, parts, times = _two_noisy_views()
    stack = fit_stack(y, parts)
    assert 0.3 <= stack.weight <= 0.7 and stack.slope > 0
    p = cross_fitted_stack(y, parts, times)
    assert _loss(y, p) < min(_loss(y, parts[:, 0]), _loss(y, parts[:, 1])) - 0.002


def test_a_useless_second_part_gets_no_weight():
    y, parts, _ = _two_noisy_views()
    rng = np.random.default_rng(1)
    parts[:, 1] = rng.uniform(0.01, 0.1, len(y))
    assert fit_stack(y, parts).weight == 1.0


def test_the_stack_by_hand():
    stack = Stack(weight=0.25, intercept=-0.5, slope=2.0)
    parts = np.array([[0.1, 0.3], [0.5, 0.5]])
    mix = 0.25 * logit(parts[:, 0]) + 0.75 * logit(parts[:, 1])
    np.testing.assert_allclose(stack.apply(parts), expit(-0.5 + 2.0 * mix))
    assert stack.apply(parts)[1] == pytest.approx(expit(-0.5))


def test_cross_fitting_never_scores_a_row_with_a_stack_fitted_on_it():
    y, parts, times = _two_noisy_views()
    p = cross_fitted_stack(y, parts, times)
    half = len(y) // 2  # times are sorted: the first half is the earlier one
    later = fit_stack(y[half:], parts[half:])
    np.testing.assert_allclose(p[:half], later.apply(parts[:half]))


def test_too_few_rows_or_one_outcome_is_a_blend_error():
    y, parts, times = _two_noisy_views(n=300)
    with pytest.raises(BlendError, match="rows"):
        cross_fitted_stack(y, parts, times)
    with pytest.raises(BlendError, match="both outcomes"):
        fit_stack(np.zeros(50), parts[:50])


def test_params_round_trip():
    class _Fake:
        stack = Stack(0.4, -0.1, 1.1)

    flat = params_of(_Fake(), {"cox": {"penalizer": 0.01, "l1_ratio": 0.0}, "lgbm": {"num_leaves": 7, "rounds": 90}})
    assert flat["cox.penalizer"] == 0.01 and flat["lgbm.rounds"] == 90 and flat["weight"] == 0.4
    parts, stack = split_params(flat)
    assert parts == {"cox": {"penalizer": 0.01, "l1_ratio": 0.0}, "lgbm": {"num_leaves": 7, "rounds": 90}}
    assert stack == _Fake.stack


def test_the_trained_blend_is_judged_cross_fitted_and_explains_with_its_parts(trained, training_set):
    blend = trained.candidates["blend"]
    assert trained.recalibration["blend"]["method"] == "stacked"
    x = training_set.rows[list(FEATURE_COLUMNS)].iloc[:200]
    impl = blend.impl
    w, b = impl.stack.weight, impl.stack.slope
    expected = b * (w * impl.parts["cox"].contributions(x) + (1 - w) * impl.parts["lgbm"].contributions(x))
    pd.testing.assert_frame_equal(blend.contributions(x), expected)
    # The holdout metrics are the cross-fitted ones, not the served stack's in-sample fit.
    hold = trained.holdout
    served_loss = _loss(hold["label"].to_numpy(float), blend.predict_proba(hold[list(FEATURE_COLUMNS)]))
    assert trained.overall("blend")["log_loss"] != pytest.approx(served_loss, abs=1e-9)
