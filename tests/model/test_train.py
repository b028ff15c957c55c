"""Training orchestration: candidates evaluated beside the ceiling, choice rule, interpretation, plots."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from leadscore.data.tables import FEATURE_COLUMNS
from leadscore.model.train import InsufficientDataError, NoCandidateError, choose_champion, train_and_evaluate
from leadscore.settings import Settings
from tests.model.synthetic import make_thin_history


def test_result_holds_candidates_ceiling_buckets_and_plots(trained):
    models = set(trained.evaluation.index.get_level_values("model"))
    assert models == {"cox", "logistic", "hgb", "lgbm", "ensemble", "ceiling"}
    assert set(trained.evaluation.index.get_level_values("segment")) == {"all", "0-7", "8-30", "31-90", "91+"}
    assert trained.chosen in {"cox", "logistic", "hgb", "lgbm", "ensemble"} and trained.model.kind == trained.chosen
    assert trained.skipped == {}
    # The candidates learn something real, and none beats the truth by more than noise.
    assert trained.overall("cox")["auc"] > 0.75
    assert trained.overall("ceiling")["log_loss"] < trained.overall(trained.chosen)["log_loss"] + 0.01
    for path in trained.plots.values():
        assert path.exists() and path.stat().st_size > 1000
    assert {"hazard_ratio", "hr_lower_95", "hr_upper_95"} <= set(trained.hazard_ratios.columns)
    assert any("Inquiry Form" in s and "× the rate" in s for s in trained.sentences)


def test_choice_prefers_cox_within_tolerance():
    overall = {"cox": {"log_loss": 0.201}, "logistic": {"log_loss": 0.2}, "hgb": {"log_loss": 0.25}}
    # the tolerance is a share of the best log loss: 0.201 is 0.5 % above 0.2
    assert choose_champion(overall, 0.006) == "cox"
    assert choose_champion(overall, 0.004) == "logistic"
    assert choose_champion({**overall, "cox": {"log_loss": 0.2012}}, Settings().survival_preference) == "logistic"


def test_horizon_mismatch_is_refused(training_set):
    with pytest.raises(ValueError, match="horizon"):
        train_and_evaluate(training_set, Settings(horizon_days=14))


# --- thin or odd real histories (issue 12) ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def thin_history():
    """Twelve months of leads, no application in the first five, 60 applications in all (a new funnel ramping up)."""
    return make_thin_history(n_leads=1500, seed=1, months=12, quiet_months=5, applications=60)


def test_thin_history_stops_clearly_with_the_default_minimums(thin_history, tmp_path):
    with pytest.raises(InsufficientDataError) as caught:
        train_and_evaluate(thin_history, Settings(), out_dir=tmp_path)
    message = str(caught.value)
    assert "60 leads with an application (needs 120, LEADSCORE_MIN_TRAINING_APPLICATIONS)" in message
    assert "(needs 1,000" not in message and "months of lead history" not in message  # only what the data lacks
    assert "lower the minimums" in message
    assert list(tmp_path.iterdir()) == []  # checked before anything was fitted or drawn


def test_thin_history_with_lowered_minimums_trains_the_candidates_that_can_fit(thin_trained):
    from leadscore.model.train import candidate_table

    _, result = thin_trained
    # No application in the inner split's fitting part: Cox, logistic and LightGBM cannot tune; HGB competes.
    assert set(result.skipped) == {"cox", "logistic", "lgbm"}
    assert "inner time split" in result.skipped["cox"] and "0 of them with an application" in result.skipped["logistic"]
    assert "Traceback" not in " ".join(result.skipped.values())
    assert result.chosen == "hgb" and set(result.candidates) == {"hgb"}
    assert result.hazard_ratios.empty and "hazard_ratios" not in result.plots
    table = candidate_table(result).set_index("model")
    assert table.loc["logistic", "status"].startswith("skipped: fit on the training block")
    assert table.loc["hgb", "status"] == "chosen" and table.loc["hgb", "auc"] > 0.6


def test_when_no_candidate_can_be_fitted_one_clear_error_names_what_the_data_lacks(tmp_path):
    # Applications only after the training block: no candidate has a positive label to learn from.
    ts = make_thin_history(n_leads=1500, seed=1, months=12, quiet_months=9, applications=60)
    lowered = Settings(min_training_applications=0, min_training_leads=0, min_history_months=0)
    with pytest.raises(NoCandidateError) as caught:
        train_and_evaluate(ts, lowered, out_dir=tmp_path)
    message = str(caught.value)
    assert message.startswith("no candidate model could be fitted: cox: ")
    assert all(f"{kind}: fit on the training block" in message for kind in ("cox", "logistic", "hgb"))
    assert "with 0 applications within 30 days" in message and "LEADSCORE_MIN_TRAINING_APPLICATIONS" in message
    assert caught.value.__suppress_context__  # no library traceback chained under it


def test_a_library_failure_of_one_candidate_is_a_skipped_reason(training_set, tmp_path, monkeypatch):
    from leadscore.model import candidate_fit

    def broken_hgb(*args, **kwargs):
        raise np.linalg.LinAlgError("Singular matrix")

    monkeypatch.setattr(candidate_fit, "fit_hgb", broken_hgb)  # where fit_candidate looks it up
    result = train_and_evaluate(training_set, Settings(), out_dir=tmp_path)
    assert result.skipped == {"hgb": "fit on the training block: LinAlgError from numpy: Singular matrix"}
    # the ensemble averages the candidates that were fitted, and only those
    assert set(result.candidates) == {"cox", "logistic", "lgbm", "ensemble"}
    assert tuple(result.candidates["ensemble"].impl.members) == ("cox", "logistic", "lgbm")


# --- refit before registering (issue 14) -----------------------------------------------------------------------


def test_the_served_model_is_refitted_on_every_row_whose_label_is_observed(trained, training_set):
    label_end = training_set.as_of - pd.Timedelta(days=training_set.horizon_days)
    rows = training_set.rows
    observed = rows[rows["as_of"] < label_end]
    served = trained.model.trained_on
    assert pd.Timestamp(served["label_end"]) == label_end
    assert served["rows"] == len(observed) > int(training_set.train_mask.sum())
    # It saw the holdout block (the latest season), which the training-block candidate never did.
    assert pd.Timestamp(served["window_end"]) > training_set.split_time
    assert pd.Timestamp(served["window_end"]) < label_end
    block = trained.candidates[trained.chosen]
    assert served["params"] == trained.params[trained.chosen]
    x = trained.holdout[list(FEATURE_COLUMNS)]
    assert not np.allclose(trained.model.predict_proba(x), block.predict_proba(x))
