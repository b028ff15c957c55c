"""The vectorized Cox fitter agrees with lifelines on the same rows (it takes lifelines' fits above
cox.LIFELINES_MAX_ROWS rows)."""

from __future__ import annotations

import numpy as np
import pytest

from leadscore.data.tables import FEATURE_COLUMNS
from leadscore.model import cox
from leadscore.model.cox_newton import fit_newton
from leadscore.model.fit_errors import CandidateFitError
from leadscore.model.preprocess import Preprocessor

COLS = list(FEATURE_COLUMNS)
# Stated tolerance: without tied event times both fitters maximize the same function with the same steps, so they
# agree to rounding (measured ~1e-14); these bounds leave room for BLAS summation order only.
COEF_ATOL, BASELINE_RTOL = 1e-6, 1e-6


@pytest.fixture(scope="module")
def rows(training_set):
    train = training_set.rows[training_set.train_mask].iloc[:1500]
    pre = Preprocessor().fit(train[COLS])
    frame = cox._lifelines_frame(
        pre.transform(train[COLS]), train["duration"].to_numpy(), train["event"].to_numpy(), 30
    )
    assert not frame.loc[frame["E"] == 1, "T"].duplicated().any()  # no tied event times: Breslow = Efron
    return train, pre, frame


@pytest.mark.parametrize("penalizer, l1_ratio", [(0.01, 0.0), (0.001, 0.5)])
def test_coefficients_baseline_and_intervals_agree_with_lifelines(rows, penalizer, l1_ratio):
    frame = rows[2]
    design = frame[[c for c in frame.columns if c.startswith("x")]].to_numpy()
    cph = cox._fit_lifelines(frame, penalizer, l1_ratio)
    fit = fit_newton(design, frame["T"].to_numpy(), frame["E"].to_numpy(bool), penalizer, l1_ratio, **cox.FIT_OPTIONS)
    np.testing.assert_allclose(fit.params, cph.params_.to_numpy(), rtol=0, atol=COEF_ATOL)
    np.testing.assert_allclose(fit.mean, cph._norm_mean.to_numpy(), rtol=1e-9, atol=1e-12)
    bch = cph.baseline_cumulative_hazard_.iloc[:, 0]
    at_events = bch.reindex(fit.baseline_times).to_numpy()
    np.testing.assert_allclose(fit.baseline_cumhaz, at_events, rtol=BASELINE_RTOL)
    for col in ("se(coef)", "exp(coef) lower 95%", "exp(coef) upper 95%", "p"):
        np.testing.assert_allclose(fit.summary[col].to_numpy(), cph.summary[col].to_numpy(), rtol=1e-5, atol=1e-9)


def test_tied_event_times_differ_only_by_the_tie_handling(rows):
    # Durations rounded up to whole days: almost every event time is tied. lifelines uses Efron's tie correction,
    # the vectorized fitter Breslow's; on such data they differ by under 0.01 in coefficients and 0.5 % in baseline
    # (measured). Landmark durations are in microseconds, so real fits have very few ties (71 of 11,538 event times
    # at 100,000 leads).
    train, pre, _ = rows
    design = pre.transform(train[COLS])
    frame = cox._lifelines_frame(design, np.ceil(train["duration"].to_numpy()), train["event"].to_numpy(), 30)
    assert frame.loc[frame["E"] == 1, "T"].duplicated().mean() > 0.5
    cph = cox._fit_lifelines(frame, 0.01, 0.0)
    fit = fit_newton(design, frame["T"].to_numpy(), frame["E"].to_numpy(bool), 0.01, 0.0, **cox.FIT_OPTIONS)
    np.testing.assert_allclose(fit.params, cph.params_.to_numpy(), rtol=0, atol=0.02)
    bch = cph.baseline_cumulative_hazard_.iloc[:, 0].reindex(fit.baseline_times).to_numpy()
    np.testing.assert_allclose(fit.baseline_cumhaz, bch, rtol=0.01)


def test_large_fits_use_the_vectorized_fitter_with_the_same_scores(rows, monkeypatch):
    train, pre, frame = rows
    args = (pre.transform(train[COLS]), train["duration"].to_numpy(), train["event"].to_numpy(), pre, 30, 0.01, 0.0)
    small = cox._fit_model(*args)
    monkeypatch.setattr(cox, "LIFELINES_MAX_ROWS", len(frame) - 1)
    large = cox._fit_model(*args)
    assert (small.fitter, large.fitter) == ("lifelines", "cox_newton")
    x = train[COLS].iloc[:300]
    for h in (7, 30):
        np.testing.assert_allclose(large.predict_proba(x, h), small.predict_proba(x, h), rtol=1e-6)
    assert list(large.summary.index) == list(small.summary.index) == pre.design_columns


def test_constant_column_and_no_event_are_clear_errors():
    x = np.column_stack([np.arange(10.0), np.ones(10)])
    with pytest.raises(CandidateFitError, match="constant"):
        fit_newton(x, np.arange(1.0, 11.0), np.ones(10, bool), 0.01, 0.0)
    with pytest.raises(CandidateFitError, match="no event"):
        fit_newton(x[:, :1], np.arange(1.0, 11.0), np.zeros(10, bool), 0.01, 0.0)
