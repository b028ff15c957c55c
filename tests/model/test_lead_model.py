"""The LeadModel API scoring uses: probabilities, contributions, percentiles, signature checks, pickling."""

from __future__ import annotations

import copy
import pickle

import numpy as np
import pytest

from leadscore.data.tables import FEATURE_COLUMNS
from leadscore.model.interpret import top_reasons
from leadscore.model.lead_model import LeadModel, ModelSignatureError

COLS = list(FEATURE_COLUMNS)


@pytest.mark.parametrize("kind", ["cox", "logistic", "hgb", "lgbm"])
def test_every_candidate_predicts_and_explains(trained, training_set, kind):
    model: LeadModel = trained.candidates[kind]
    x = training_set.rows[COLS].iloc[:300]
    p = model.predict_proba(x)
    assert p.shape == (300,) and np.all((p >= 0) & (p <= 1))
    contrib = model.contributions(x)
    assert list(contrib.columns) == COLS and contrib.index.equals(x.index)
    assert np.isfinite(contrib.to_numpy()).all()
    reasons = top_reasons(contrib)
    assert list(reasons.columns) == ["top_reason_1", "top_reason_2", "top_reason_3"]
    assert (reasons["top_reason_1"] != "").any()
    assert model.feature_columns == COLS and len(model.reference_scores) <= 10_000


def test_percentile_and_pickle_round_trip(trained, training_set):
    model = trained.model
    ref = model.reference_scores
    assert np.all(np.diff(ref) >= 0)
    pct = model.percentile(np.array([-1.0, ref[len(ref) // 2], 2.0]))
    assert pct[0] == 0.0 and pct[2] == 1.0 and 0.4 < pct[1] < 0.6
    clone = pickle.loads(pickle.dumps(model))
    x = training_set.rows[COLS].iloc[:100]
    np.testing.assert_array_equal(clone.predict_proba(x), model.predict_proba(x))


def test_check_features_names_missing_extra_and_wrong_dtype(trained, training_set):
    x = training_set.rows[COLS].iloc[:10]
    with pytest.raises(ModelSignatureError, match="email_click"):
        trained.model.check_features(x.drop(columns=["email_click"]))
    with pytest.raises(ModelSignatureError, match="surprise"):
        trained.model.predict_proba(x.assign(surprise=1))
    with pytest.raises(ModelSignatureError, match="pings"):
        trained.model.check_features(x.assign(pings=x["pings"].astype(str)))


def test_unseen_category_level_is_scored(trained, training_set):
    x = training_set.rows[COLS].iloc[:5].copy()
    x["source"] = "Brand New Source"
    for model in trained.candidates.values():
        assert np.isfinite(model.predict_proba(x)).all()


def corrupted(model: LeadModel, how: str) -> LeadModel:
    """A deep copy of a real fitted candidate with its fitted numbers tampered with (not a dummy model)."""
    bad = copy.deepcopy(model)
    impl = bad.impl
    if how == "negative_baseline":  # Cox: a negative cumulative hazard gives probabilities below 0
        impl.baseline_cumhaz = -np.abs(impl.baseline_cumhaz) - 0.5
    elif how == "nan_coefficient":  # Cox or logistic: one NaN coefficient makes every probability NaN
        target = impl.beta if hasattr(impl, "beta") else impl.clf.coef_[0]
        target[0] = np.nan
    elif how == "nan_baseline_prediction":  # HGB: the boosting's starting log-odds
        impl.clf._baseline_prediction = np.full_like(impl.clf._baseline_prediction, np.nan)
    elif how == "nan_leaves":  # LightGBM: every leaf value of the first tree set to NaN in the saved model
        dumped = impl.booster.model_to_string()
        head, _, tail = dumped.partition("leaf_value=")
        line, _, rest = tail.partition("\n")
        nan_leaves = " ".join("nan" for _ in line.split())
        impl.booster = type(impl.booster)(model_str=f"{head}leaf_value={nan_leaves}\n{rest}")
    return bad


@pytest.mark.parametrize(
    ("kind", "how"),
    [
        ("cox", "negative_baseline"),
        ("cox", "nan_coefficient"),
        ("logistic", "nan_coefficient"),
        ("hgb", "nan_baseline_prediction"),
    ],
)
def test_a_real_candidate_with_corrupted_output_is_refused_not_clipped(trained, training_set, kind, how):
    from leadscore.model.fit_errors import InvalidProbabilityError

    x = training_set.rows[COLS].iloc[:300]
    bad = corrupted(trained.candidates[kind], how)
    with pytest.raises(
        InvalidProbabilityError, match=rf"the {kind} model returned \d+ of 300 probabilities that are NaN"
    ):
        bad.predict_proba(x)
    # Scoring turns it into the refusal that stops the run before any file is written.
    from datetime import date

    from leadscore.scoring.errors import ScoreValidationError
    from leadscore.scoring.score import score_leads
    from leadscore.settings import Settings

    features = x.assign(person_guid=[f"g{i}" for i in range(len(x))])
    with pytest.raises(ScoreValidationError, match="NaN or outside"):
        score_leads(bad, features, "7", date(2026, 11, 23), Settings())
