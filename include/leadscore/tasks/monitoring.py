"""Glue between the inference run and the monitoring package: inputs from the run's files, result to its summary."""

from __future__ import annotations

import logging
from typing import Any

from leadscore.intervals import Interval
from leadscore.run_log import write_summary
from leadscore.settings import Settings

log = logging.getLogger(__name__)


def run_weekly_monitoring(settings: Settings, interval: Interval, delivered: dict[str, Any]) -> dict[str, Any]:
    """Monitor the week: realized performance of past scores, drift, the HTML report, then the gates.

    The summary and report are written before the gates are checked, so a failing gate still leaves its evidence.

    Raises:
        MonitoringGateError: a failure bound is passed.
    """
    import pandas as pd

    from leadscore.model.registry import load_champion
    from leadscore.monitoring import monitor_week
    from leadscore.monitoring.gates import check_gates, load_thresholds
    from leadscore.tasks.inference import features_path

    path = features_path(settings, interval)
    features = pd.read_parquet(path) if path.exists() else None
    champion = load_champion(settings)
    reference = getattr(champion.model, "reference_profile", None)
    result = monitor_week(settings, interval.end_date, features, reference)
    summary = {
        "scored_on": interval.end_date.isoformat(),
        "status": result.status,
        "messages": list(result.messages),
        "report": str(result.report_path),
        "delivered": {k: delivered.get(k) for k in ("sent", "skipped", "dry_run")},
    }
    write_summary(settings, "monitoring", interval.key, summary)
    check_gates(result, load_thresholds())
    return summary
