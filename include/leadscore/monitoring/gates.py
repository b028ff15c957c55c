"""Gates and alerts: configurable warning and failure bounds on the weekly monitoring metrics.

Past a warning bound the run logs a warning and the report marks it; past a failure bound :func:`check_gates` raises
:class:`MonitoringGateError` so the monitoring task fails visibly (the delivery already happened; the team retrains or
investigates). Every bound has a default and an environment override ``LEADSCORE_MON_<NAME>`` (upper case).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from leadscore.settings import env_overrides

log = logging.getLogger(__name__)

ENV_PREFIX = "LEADSCORE_MON_"


class MonitoringGateError(RuntimeError):
    """A monitoring failure bound was passed; the message lists every failed check and what to do."""


@dataclass(frozen=True)
class MonitoringThresholds:
    """Warning and failure bounds of the weekly monitoring (override with ``LEADSCORE_MON_<FIELD>``)."""

    auc_floor: float = field(
        default=0.65,
        metadata={
            "doc": "Fail when the realized AUC is below this for auc_floor_weeks weeks in a row (one week: warning)"
        },
    )
    auc_floor_weeks: int = field(default=2, metadata={"doc": "Consecutive weeks below auc_floor that fail the run"})
    min_realized_leads: int = field(
        default=100, metadata={"doc": "Judge the realized AUC only on at least this many labelled leads"}
    )
    score_psi_fail: float = field(
        default=0.25, metadata={"doc": "Fail when the score's PSI vs the training reference exceeds this"}
    )
    score_psi_warn: float = field(default=0.10, metadata={"doc": "Warn when the score's PSI exceeds this"})
    feature_psi_warn: float = field(default=0.10, metadata={"doc": "Warn when any feature's PSI exceeds this"})
    missing_jump_warn: float = field(
        default=0.10, metadata={"doc": "Warn when a field's missing share rises by more than this over the reference"}
    )


def load_thresholds(environ: Mapping[str, str] | None = None) -> MonitoringThresholds:
    """Thresholds from defaults overridden by ``LEADSCORE_MON_<NAME>`` variables.

    Raises:
        ValueError: a variable does not parse as its field's type (the message names it).
    """
    return MonitoringThresholds(**env_overrides(MonitoringThresholds, ENV_PREFIX, environ))


@dataclass
class MonitoringResult:
    """What one week's monitoring found.

    Attributes:
        scored_on: the monitoring (scoring) date.
        status: "ok" | "warning" | "failed".
        messages: human-readable findings, failures first.
        failures / warnings: the messages per severity.
        metrics: the values the gates read (see :func:`assess`) plus the summary numbers of the report.
        report_path: the weekly HTML report.
        history_path: the history parquet.
    """

    scored_on: date
    status: str
    messages: list[str]
    metrics: dict[str, Any]
    report_path: Path
    history_path: Path
    failures: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def _finite(value: Any) -> bool:
    return value is not None and isinstance(value, int | float) and math.isfinite(value)


def assess(metrics: Mapping[str, Any], thresholds: MonitoringThresholds) -> tuple[list[str], list[str]]:
    """Compare the week's metrics with the bounds.

    Args:
        metrics: may hold ``score_psi`` (float), ``feature_psi`` ({feature: psi}), ``missing_jump``
            ({field: now - reference}), ``unseen_sources`` ([labels]), ``realized_auc_series`` ([[scored_on, auc,
            n], ...] oldest first, this week last: the realized AUC of each monitoring week), ``reference_missing``
            (bool: no training reference to measure drift against). Absent keys are not judged.
        thresholds: the bounds.
    Returns:
        (failures, warnings) as messages.
    """
    t = thresholds
    failures: list[str] = []
    warnings: list[str] = []

    series = [
        (str(d), float(a), float(n))
        for d, a, n in metrics.get("realized_auc_series", [])
        if _finite(a) and _finite(n) and n >= t.min_realized_leads
    ]
    if series and series[-1][0] == str(metrics.get("scored_on", series[-1][0])):
        recent = series[-t.auc_floor_weeks :]
        below = [s for s in recent if s[1] < t.auc_floor]
        last = series[-1]
        if len(recent) >= t.auc_floor_weeks and len(below) == len(recent):
            weeks = ", ".join(f"{d}: {a:.3f}" for d, a, _ in recent)
            failures.append(
                f"realized AUC below the floor {t.auc_floor:.2f} for {t.auc_floor_weeks} weeks in a row "
                f"({weeks}); retrain or investigate the data"
            )
        elif last[1] < t.auc_floor:
            warnings.append(
                f"realized AUC {last[1]:.3f} is below the floor {t.auc_floor:.2f} this week "
                f"({int(last[2])} leads); a second week below fails the run"
            )

    score_psi = metrics.get("score_psi")
    if _finite(score_psi):
        if score_psi > t.score_psi_fail:
            failures.append(
                f"score PSI {score_psi:.3f} exceeds {t.score_psi_fail:.2f}: this week's score "
                "distribution moved far from the training reference; retrain or investigate the inputs"
            )
        elif score_psi > t.score_psi_warn:
            warnings.append(
                f"score PSI {score_psi:.3f} exceeds {t.score_psi_warn:.2f}: the score distribution is shifting"
            )

    drifting = sorted(
        ((v, k) for k, v in metrics.get("feature_psi", {}).items() if _finite(v) and v > t.feature_psi_warn),
        reverse=True,
    )
    if drifting:
        listed = ", ".join(f"{k} ({v:.2f})" for v, k in drifting[:8])
        more = f" and {len(drifting) - 8} more" if len(drifting) > 8 else ""
        warnings.append(f"{len(drifting)} feature(s) drifted past PSI {t.feature_psi_warn:.2f}: {listed}{more}")

    unseen = list(metrics.get("unseen_sources", []))
    if unseen:
        warnings.append(
            f"{len(unseen)} source label(s) unseen in training: {', '.join(map(str, unseen[:10]))}; "
            "map them in data.clean.SOURCE_LABELS or retrain"
        )

    jumps = sorted(
        ((v, k) for k, v in metrics.get("missing_jump", {}).items() if _finite(v) and v > t.missing_jump_warn),
        reverse=True,
    )
    if jumps:
        listed = ", ".join(f"{k} (+{v:.0%})" for v, k in jumps)
        warnings.append(f"missing values jumped past +{t.missing_jump_warn:.0%} of rows in {listed}")

    if metrics.get("reference_missing"):
        warnings.append(
            "the champion has no training reference profile: drift was not measured (retrain so the model stores one)"
        )
    return failures, warnings


def status_of(failures: list[str], warnings: list[str]) -> str:
    """ "failed" with any failure, else "warning" with any warning, else "ok"."""
    return "failed" if failures else "warning" if warnings else "ok"


def check_gates(result: MonitoringResult, thresholds: MonitoringThresholds) -> None:
    """Raise past a failure bound; log each warning.

    The bounds are re-applied to ``result.metrics`` so a caller can judge a result with other thresholds.

    Raises:
        MonitoringGateError: at least one failure bound is passed; the message lists them and the report path.
    """
    failures, warnings = assess(result.metrics, thresholds)
    for message in warnings:
        log.warning("monitoring %s: %s", result.scored_on.isoformat(), message)
    if failures:
        raise MonitoringGateError(
            f"monitoring of {result.scored_on.isoformat()} failed {len(failures)} check(s): "
            + "; ".join(failures)
            + f". Report: {result.report_path}"
        )
