"""The ensemble candidate: the plain mean of the fitted candidates, judged on the holdout like every other candidate,
refitted member by member before it serves, and never hiding a member's broken output."""

from __future__ import annotations

import copy

import numpy as np
import pandas as pd
import pytest

from leadscore.data.tables import FEATURE_COLUMNS
from leadscore.model.ensemble import ENSEMBLE, REASON_MEMBERS, ensemble_of
from leadscore.model.fit_errors import InvalidProbabilityError
from leadscore.model.train import refit_chosen
from leadscore.scoring.reasons import top_reasons

COLS = list(FEATURE_COLUMNS)
MEMBERS = ("cox", "logistic", "hgb", "lgbm")


def test_the_ensemble_is_judged_on_the_holdout_as_the_mean_of_the_members(trained):
    assert ENSEMBLE in trained.candidates and (ENSEMBLE, "all") in trained.evaluation.index
    ensemble = trained.candidates[ENSEMBLE]
    assert tuple(ensemble.impl.members) == MEMBERS
    x = trained.holdout[COLS]
    members = np.mean([trained.candidates[k].predict_proba(x) for k in MEMBERS], axis=0)
    np.testing.assert_allclose(ensemble.predict_proba(x), members, rtol=0, atol=1e-12)
    assert trained.params[ENSEMBLE] == {"members": {k: trained.params[k] for k in MEMBERS}}
    assert trained.recalibration[ENSEMBLE]["method"] is None


def test_its_reasons_average_the_exact_members(trained):
    ensemble = trained.candidates[ENSEMBLE]
    x = trained.holdout[COLS].iloc[:200]
    frames = [trained.candidates[k].contributions(x) for k in REASON_MEMBERS]
    expected = sum(frames[1:], frames[0]) / len(frames)
    got = ensemble.contributions(x)
    assert list(got.columns) == COLS and got.index.equals(x.index)
    np.testing.assert_allclose(got.to_numpy(), expected.to_numpy(), rtol=1e-12, atol=1e-12)
    reasons = top_reasons(got, x)
    assert len(reasons) == 3 and all(len(r) == len(x) for r in reasons)


def test_a_member_with_corrupted_output_stops_the_ensemble(trained):
    lgbm = copy.deepcopy(trained.candidates["lgbm"])
    booster = lgbm.impl.booster
    real = booster.predict
    booster.predict = lambda *a, **k: real(*a, **k) + 1.0  # a real LightGBM whose answers are pushed past 1
    members = {"cox": trained.candidates["cox"], "lgbm": lgbm}
    with pytest.raises(InvalidProbabilityError, match="lgbm"):
        ensemble_of(members, trained.horizon_days, trained.holdout[COLS])


def test_too_few_members_or_mixed_horizons_are_refused(trained):
    with pytest.raises(ValueError, match=r"at least 2 fitted candidates; got \['cox'\]"):
        ensemble_of({"cox": trained.candidates["cox"]}, trained.horizon_days, trained.holdout[COLS])
    other = copy.copy(trained.candidates["logistic"])
    other.horizon_days = trained.horizon_days + 30
    with pytest.raises(ValueError, match="predict over"):
        ensemble_of({"cox": trained.candidates["cox"], "logistic": other}, trained.horizon_days, trained.holdout[COLS])


def test_the_refit_refits_every_member_on_every_observed_label(trained, training_set):
    served, info = refit_chosen(training_set, trained.candidates[ENSEMBLE], trained.params[ENSEMBLE])
    assert served.kind == ENSEMBLE and tuple(served.impl.members) == MEMBERS
    label_end = pd.Timestamp(training_set.as_of) - pd.Timedelta(days=training_set.horizon_days)
    assert pd.Timestamp(info["window_end"]) < label_end and info["members"] == list(MEMBERS)
    for kind, member in served.impl.members.items():
        assert member is not trained.candidates[kind]
        assert (
            member.trained_on["window_end"] == info["window_end"]
            and member.trained_on["params"] == trained.params[kind]
        )
    assert served.trained_on == info


def test_mlflow_params_name_the_members_once(trained):
    from leadscore.model.run_logging import run_params

    params = run_params(trained)
    assert params["ensemble.members"] == "cox,logistic,hgb,lgbm" and params["ensemble.recalibration"] == "none"
    assert "lgbm.num_leaves" in params and "ensemble" in params["candidates_fitted"].split(",")
