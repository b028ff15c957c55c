"""Each threshold path: ok, warning, failure, the two-week AUC rule, env overrides, check_gates."""

from __future__ import annotations

import logging
from datetime import date
from pathlib import Path

import pytest

from leadscore.monitoring.gates import (
    MonitoringGateError,
    MonitoringResult,
    MonitoringThresholds,
    assess,
    check_gates,
    load_thresholds,
    status_of,
)

T = MonitoringThresholds()
CALM = {
    "scored_on": "2025-02-09",
    "score_psi": 0.02,
    "feature_psi": {"pings": 0.01, "email_sent": 0.05},
    "missing_jump": {"college": 0.01},
    "unseen_sources": [],
    "realized_auc_series": [["2025-02-02", 0.81, 900], ["2025-02-09", 0.80, 950]],
}


def _result(metrics: dict) -> MonitoringResult:
    return MonitoringResult(
        scored_on=date(2025, 2, 9),
        status="",
        messages=[],
        metrics=metrics,
        report_path=Path("/r/weekly_20250209.html"),
        history_path=Path("/r/history.parquet"),
    )


def test_ok_path() -> None:
    failures, warnings = assess(CALM, T)
    assert (failures, warnings) == ([], [])
    assert status_of(failures, warnings) == "ok"
    check_gates(_result(CALM), T)  # no exception


def test_warning_paths() -> None:
    m = {
        **CALM,
        "score_psi": 0.15,
        "feature_psi": {"pings": 0.12, "email_sent": 0.3},
        "unseen_sources": ["TikTok"],
        "missing_jump": {"college": 0.25},
    }
    failures, warnings = assess(m, T)
    assert failures == []
    text = " | ".join(warnings)
    assert "score PSI 0.150 exceeds 0.10" in text
    assert "2 feature(s) drifted past PSI 0.10: email_sent (0.30), pings (0.12)" in text
    assert "unseen in training: TikTok" in text
    assert "college (+25%)" in text
    assert status_of(failures, warnings) == "warning"


def test_score_psi_failure() -> None:
    failures, _ = assess({**CALM, "score_psi": 0.3}, T)
    assert len(failures) == 1 and "score PSI 0.300 exceeds 0.25" in failures[0]
    with pytest.raises(MonitoringGateError, match=r"score PSI 0\.300 exceeds 0\.25.*Report: /r/weekly_20250209\.html"):
        check_gates(_result({**CALM, "score_psi": 0.3}), T)


def test_auc_below_floor_one_week_warns_two_weeks_fail() -> None:
    one = {**CALM, "realized_auc_series": [["2025-02-02", 0.70, 900], ["2025-02-09", 0.60, 950]]}
    failures, warnings = assess(one, T)
    assert failures == [] and "realized AUC 0.600 is below the floor 0.65" in warnings[0]
    two = {**CALM, "realized_auc_series": [["2025-02-02", 0.62, 900], ["2025-02-09", 0.60, 950]]}
    failures, _ = assess(two, T)
    assert len(failures) == 1
    assert "below the floor 0.65 for 2 weeks in a row (2025-02-02: 0.620, 2025-02-09: 0.600)" in failures[0]


def test_auc_rule_ignores_small_weeks_and_weeks_without_a_value() -> None:
    small = {**CALM, "realized_auc_series": [["2025-02-02", 0.62, 900], ["2025-02-09", 0.60, 20]]}
    assert assess(small, T) == ([], [])  # 20 leads: this week's AUC is not judged
    none_now = {**CALM, "realized_auc_series": [["2025-02-02", 0.62, 900], ["2025-02-09", float("nan"), 0]]}
    assert assess(none_now, T) == ([], [])
    first_week = {**CALM, "realized_auc_series": [["2025-02-09", 0.60, 900]]}
    failures, warnings = assess(first_week, T)
    assert failures == [] and len(warnings) == 1  # one week of history cannot make two weeks below


def test_thresholds_change_the_verdict() -> None:
    strict = MonitoringThresholds(auc_floor=0.85, auc_floor_weeks=2)
    failures, _ = assess(CALM, strict)
    assert failures and "floor 0.85" in failures[0]
    with pytest.raises(MonitoringGateError, match="1 check"):
        check_gates(_result(CALM), strict)


def test_missing_reference_warns() -> None:
    _, warnings = assess({"reference_missing": True}, T)
    assert warnings == [
        "the champion has no training reference profile: drift was not measured (retrain so the model stores one)"
    ]


def test_check_gates_logs_warnings(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="leadscore.monitoring.gates"):
        check_gates(_result({**CALM, "unseen_sources": ["Radio"]}), T)
    assert "unseen in training: Radio" in caplog.text


def test_load_thresholds_env_overrides() -> None:
    t = load_thresholds(
        {"LEADSCORE_MON_AUC_FLOOR": "0.7", "LEADSCORE_MON_AUC_FLOOR_WEEKS": "3", "LEADSCORE_MON_SCORE_PSI_FAIL": ""}
    )
    assert (t.auc_floor, t.auc_floor_weeks, t.score_psi_fail) == (0.7, 3, 0.25)
    assert load_thresholds({}) == MonitoringThresholds()
    with pytest.raises(ValueError, match="LEADSCORE_MON_AUC_FLOOR_WEEKS='two'"):
        load_thresholds({"LEADSCORE_MON_AUC_FLOOR_WEEKS": "two"})
