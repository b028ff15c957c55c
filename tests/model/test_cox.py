"""The penalized Cox model: probabilities in [0, 1], monotone in H, equal to lifelines' own survival function."""

from __future__ import annotations

import numpy as np
import pandas as pd

from leadscore.data.tables import FEATURE_COLUMNS
from leadscore.model.cox import _fit_lifelines, _from_lifelines, _lifelines_frame, fit_cox, inner_time_split
from leadscore.model.preprocess import Preprocessor

COLS = list(FEATURE_COLUMNS)


def _train(ts):
    return ts.rows[ts.train_mask]


def test_probabilities_in_unit_interval_and_monotone_in_horizon(trained, training_set):
    cox = trained.candidates["cox"].impl
    x = training_set.rows[COLS]
    p = {h: cox.predict_proba(x, h) for h in (1, 7, 14, 30)}
    for values in p.values():
        assert np.all((values >= 0) & (values <= 1))
    assert np.all(p[1] <= p[7]) and np.all(p[7] <= p[14]) and np.all(p[14] <= p[30])
    assert p[30].max() > p[30].min()


def test_vectorized_probability_equals_lifelines_survival_function(training_set):
    train = _train(training_set)
    pre = Preprocessor().fit(train[COLS])
    frame = _lifelines_frame(pre.transform(train[COLS]), train["duration"].to_numpy(), train["event"].to_numpy(), 30)
    cph = _fit_lifelines(frame, 0.01, 0.0)
    model = _from_lifelines(cph, pre, 30, 0.01, 0.0)
    rows = training_set.rows[COLS].iloc[:25]
    design = pd.DataFrame(pre.transform(rows), columns=[c for c in frame.columns if c.startswith("x")])
    # lifelines' survival function on its own timeline (the Breslow step function, no interpolation).
    survival = cph.predict_survival_function(design)
    for h in (10, 30):
        at = survival.index[survival.index <= h].max()
        expected = 1 - survival.loc[at].to_numpy()
        np.testing.assert_allclose(model.predict_proba(rows, h), expected, rtol=1e-9, atol=1e-12)


def test_contributions_sum_to_log_partial_hazard(trained, training_set):
    cox = trained.candidates["cox"].impl
    x = training_set.rows[COLS].iloc[:200]
    contrib = cox.contributions(x)
    assert list(contrib.columns) == COLS
    np.testing.assert_allclose(contrib.sum(axis=1).to_numpy(), cox.log_partial_hazard(x), atol=1e-9)


def test_grid_search_records_every_point_and_picks_the_best(trained):
    cox = trained.candidates["cox"].impl
    assert len(cox.grid) == 4
    best = min(cox.grid, key=lambda r: r["valid_log_loss"])
    assert (cox.penalizer, cox.l1_ratio) == (best["penalizer"], best["l1_ratio"])


def test_inner_time_split_leaves_a_horizon_gap(training_set):
    as_of = _train(training_set)["as_of"]
    fit, valid = inner_time_split(as_of, 30)
    assert fit.any() and valid.any()
    assert as_of[fit].max() + pd.Timedelta(days=30) < as_of[valid].min()


def test_no_events_is_a_clear_error(training_set):
    train = _train(training_set).iloc[:300]
    try:
        fit_cox(
            train[COLS],
            train["duration"].to_numpy(),
            np.zeros(len(train), bool),
            train["as_of"],
            train["label"].to_numpy(),
            30,
            grid=((0.01, 0.0),),
        )
    except ValueError as exc:
        assert "no application within 30 days" in str(exc)
    else:
        raise AssertionError("expected ValueError")
