"""The LeadModel API scoring uses: probabilities, contributions, percentiles, signature checks, pickling."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from leadscore.data.tables import FEATURE_COLUMNS
from leadscore.model.interpret import top_reasons
from leadscore.model.lead_model import LeadModel, ModelSignatureError

COLS = list(FEATURE_COLUMNS)


@pytest.mark.parametrize("kind", ["cox", "logistic", "hgb"])
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
