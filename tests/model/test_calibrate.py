"""Recalibration on the holdout block: chosen only when it helps cross-fitted log loss, never judged on its own rows;
and the HGB challenger's early stopping on a time-ordered slice."""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.special import expit

from leadscore.model.calibrate import choose_recalibration, cross_fitted, fit_calibrator
from leadscore.model.evaluate import calibration_slope_intercept


def _holdout(n: int = 6000, seed: int = 0):
    rng = np.random.default_rng(seed)
    z = rng.normal(-2.5, 1.0, n)
    y = (rng.uniform(size=n) < expit(z)).astype(float)
    times = np.sort(rng.uniform(0, 100, n))
    return z, y, times


def test_an_overconfident_candidate_is_recalibrated_and_judged_on_rows_its_calibrator_did_not_see():
    z, y, times = _holdout()
    p = expit(2.0 * z + 2.0)  # twice too steep: slope 0.5
    rec = choose_recalibration(y, p, times, min_gain=0.0005)
    assert rec.method in {"platt", "isotonic"}
    assert rec.log_loss[rec.method] < rec.log_loss["raw"] - 0.0005
    slope, intercept = calibration_slope_intercept(y, rec.p)
    assert 0.85 < slope < 1.15 and abs(intercept) < 0.15
    # Cross-fitting: the earlier half is scored by a calibrator fitted on the later half only, and vice versa.
    q = cross_fitted(y, p, times, "platt")
    first, second = np.arange(3000), np.arange(3000, 6000)
    np.testing.assert_allclose(q[first], fit_calibrator(y[second], p[second], "platt").apply(p[first]))
    np.testing.assert_allclose(q[second], fit_calibrator(y[first], p[first], "platt").apply(p[second]))


def test_a_calibrated_candidate_keeps_its_own_probabilities():
    z, y, times = _holdout(seed=1)
    p = expit(z)
    rec = choose_recalibration(y, p, times, min_gain=0.0005)
    assert rec.method is None and rec.calibrator is None
    np.testing.assert_array_equal(rec.p, p)


def test_hgb_stops_early_on_the_latest_dates_then_refits_every_row(training_set, monkeypatch):
    from sklearn.ensemble import HistGradientBoostingClassifier

    from leadscore.data.tables import FEATURE_COLUMNS
    from leadscore.model.challengers import fit_hgb

    calls = []
    real_fit = HistGradientBoostingClassifier.fit

    def spy(self, x, y, sample_weight=None, **kw):
        calls.append(
            {
                "rows": len(x),
                "index": x.index,
                "val_index": None if kw.get("X_val") is None else kw["X_val"].index,
                "early_stopping": self.early_stopping,
            }
        )
        return real_fit(self, x, y, sample_weight, **kw)

    monkeypatch.setattr(HistGradientBoostingClassifier, "fit", spy)
    train = training_set.rows[training_set.train_mask]
    train = train[train["label"].notna()]
    model = fit_hgb(train[list(FEATURE_COLUMNS)], train["label"].to_numpy(), train["as_of"], 30)
    probe, final = calls
    t = train["as_of"]
    # The probe validates on the latest 10 % of landmark dates, after an H-day gap; never a random share.
    assert probe["early_stopping"] and probe["val_index"] is not None
    assert t.loc[probe["val_index"]].min() >= t.loc[probe["index"]].max() + pd.Timedelta(days=30)
    assert 0.05 < len(probe["val_index"]) / len(train) < 0.2
    # The served fit uses every labelled row with the rounds found, without another random split.
    assert not final["early_stopping"] and final["rows"] == len(train)
    assert model.clf.max_iter == model.clf.n_iter_ >= 1
