"""Training orchestration: candidates evaluated beside the ceiling, choice rule, interpretation, plots."""

from __future__ import annotations

import pytest

from leadscore.model.train import choose_champion, train_and_evaluate
from leadscore.settings import Settings


def test_result_holds_candidates_ceiling_buckets_and_plots(trained):
    models = set(trained.evaluation.index.get_level_values("model"))
    assert models == {"cox", "logistic", "hgb", "ceiling"}
    assert set(trained.evaluation.index.get_level_values("segment")) == {"all", "0-7", "8-30", "31-90", "91+"}
    assert trained.chosen in {"cox", "logistic", "hgb"} and trained.model is trained.candidates[trained.chosen]
    # The candidates learn something real, and none beats the truth by more than noise.
    assert trained.overall("cox")["auc"] > 0.75
    assert trained.overall("ceiling")["log_loss"] < trained.overall(trained.chosen)["log_loss"] + 0.01
    for path in trained.plots.values():
        assert path.exists() and path.stat().st_size > 1000
    assert {"hazard_ratio", "hr_lower_95", "hr_upper_95"} <= set(trained.hazard_ratios.columns)
    assert any("Inquiry Form" in s and "× the rate" in s for s in trained.sentences)


def test_choice_prefers_cox_within_tolerance():
    overall = {"cox": {"log_loss": 0.201}, "logistic": {"log_loss": 0.2}, "hgb": {"log_loss": 0.25}}
    assert choose_champion(overall, 0.002) == "cox"
    assert choose_champion(overall, 0.0005) == "logistic"


def test_horizon_mismatch_is_refused(training_set):
    with pytest.raises(ValueError, match="horizon"):
        train_and_evaluate(training_set, Settings(horizon_days=14))
