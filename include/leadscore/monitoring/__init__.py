"""Monitoring and insight: realized performance, drift, gates, the weekly report and the training insight report.

Public API::

    monitor_week(settings, scored_on, features, champion_reference) -> MonitoringResult
    reference_profile(features, scores, hazard_ratios=None) -> dict
    check_gates(result, thresholds) -> None            # raises MonitoringGateError
    load_thresholds() -> MonitoringThresholds
    training_insight_report(settings, training_rows, hazard_ratios_df, model, out_path) -> Path
"""

from __future__ import annotations

from leadscore.monitoring.drift import ReferenceProfileError, reference_profile
from leadscore.monitoring.gates import (
    MonitoringGateError,
    MonitoringResult,
    MonitoringThresholds,
    check_gates,
    load_thresholds,
)
from leadscore.monitoring.insight import training_insight_report
from leadscore.monitoring.weekly import MonitoringInputError, monitor_week

__all__ = [
    "MonitoringGateError",
    "MonitoringInputError",
    "MonitoringResult",
    "MonitoringThresholds",
    "ReferenceProfileError",
    "check_gates",
    "load_thresholds",
    "monitor_week",
    "reference_profile",
    "training_insight_report",
]
