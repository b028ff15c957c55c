"""The weekly monitoring run: realized performance, drift, gates' verdict, history and the HTML report."""

from __future__ import annotations

import logging
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from leadscore.monitoring.drift import ReferenceProfileError, feature_drift, score_drift
from leadscore.monitoring.gates import MonitoringResult, MonitoringThresholds, assess, load_thresholds, status_of
from leadscore.monitoring.history import history_path, read_history, up_to, upsert_history
from leadscore.monitoring.realized import (
    SCORES_NAME,
    RealizedWeek,
    as_flat,
    probability_column,
    realized_performance,
)
from leadscore.monitoring.report import (
    TIERS,
    WeeklyReportData,
    contact_sentence,
    fmt,
    pct,
    render_weekly_report,
)
from leadscore.scoring.outreach import best_contact_list
from leadscore.settings import Settings

log = logging.getLogger(__name__)


class MonitoringInputError(ValueError):
    """The week cannot be monitored: its scores are missing or unusable."""


def report_path(reports_dir: Path, scored_on: date) -> Path:
    """``<reports_dir>/weekly_<YYYYMMDD>.html``."""
    return Path(reports_dir) / f"weekly_{scored_on.strftime('%Y%m%d')}.html"


def read_week_scores(scores_dir: Path, scored_on: date) -> pd.DataFrame:
    """The week's ``scores.parquet``.

    Raises:
        MonitoringInputError: the file is missing (scoring did not run for this date).
    """
    path = Path(scores_dir) / scored_on.strftime("%Y%m%d") / SCORES_NAME
    if not path.is_file():
        raise MonitoringInputError(
            f"no scores for {scored_on.isoformat()} at {path}; run the scoring of that week first"
        )
    return pd.read_parquet(path)


def load_leads(settings: Settings) -> pd.DataFrame:
    """Cleaned leads (latest version per person) from every stored extract."""
    from leadscore.data.store import ExtractStore

    return ExtractStore(settings.extracts_dir).read_all("leads")


def _auc_series(prior: pd.DataFrame, scored_on: date, flat: dict[str, Any]) -> list[list[Any]]:
    series: list[list[Any]] = []
    if "realized_auc" in prior:
        for _, r in prior.iterrows():
            series.append([str(r["scored_on"]), _num(r.get("realized_auc")), _num(r.get("realized_n"))])
    series.append([scored_on.isoformat(), _num(flat.get("realized_auc")), _num(flat.get("realized_n"))])
    return series


def _num(value: Any) -> float:
    try:
        out = float(value)
    except (TypeError, ValueError):
        return float("nan")
    return out


def summary_lines(
    scored_on: date,
    status: str,
    failures: list[str],
    warnings: list[str],
    n_scored: int,
    tier_counts: dict[str, int],
    control_n: int,
    model_version: str,
    realized: list[RealizedWeek],
    horizon_days: int,
    score_psi: float | None,
    drift: pd.DataFrame | None,
    thresholds: MonitoringThresholds,
) -> list[str]:
    """The short text summary at the top of the weekly report, one sentence per line."""
    lines = [
        f"Week of {scored_on.isoformat()}: status {status.upper()} "
        f"({len(failures)} failure(s), {len(warnings)} warning(s))."
    ]
    tiers = ", ".join(
        f"{k} {tier_counts.get(k, 0):,} ({pct(tier_counts.get(k, 0) / n_scored if n_scored else None)})" for k in TIERS
    )
    control = f"; {control_n:,} control leads held out" if control_n else ""
    lines.append(f"{n_scored:,} leads scored by model {model_version or 'n/a'}: {tiers}{control}.")
    lag1 = next((w for w in realized if w.lag == 1), None)
    if lag1 is not None:
        m = lag1.metrics
        lines.append(
            f"Scores of {lag1.scored_on.isoformat()} ({horizon_days} days earlier): realized AUC {fmt(m['auc'])} on "
            f"{int(m['n']):,} leads, {int(m['positives']):,} applied ({pct(m['base_rate'])}); calibration slope "
            f"{fmt(m['calibration_slope'], 2)}; tier A converted at {pct(m['tier_a_conversion'])} vs "
            f"{pct(m['tier_a_predicted'])} predicted."
        )
        if m["control_n"] > 0:
            lines.append(
                f"Control group: {pct(m['control_conversion'])} of {int(m['control_n']):,} control leads "
                f"applied vs {pct(m['scored_conversion'])} of scored leads (lift {fmt(m['control_lift'], 2)}×)."
            )
    elif realized:
        w = realized[0]
        lines.append(
            f"Oldest judged scores ({w.scored_on.isoformat()}, lag {w.lag}H): realized AUC {fmt(w.metrics['auc'])}."
        )
    else:
        lines.append(f"No realized performance yet: no scored week is at least {horizon_days} days old.")
    if score_psi is None:
        lines.append("Drift not measured: the champion has no training reference profile.")
    else:
        word = (
            "stable"
            if score_psi <= thresholds.score_psi_warn
            else "shifting"
            if score_psi <= thresholds.score_psi_fail
            else "a large shift"
        )
        text = f"Score PSI {score_psi:.3f} vs training ({word})"
        if drift is not None and len(drift):
            n_over = int((drift["psi"] > thresholds.feature_psi_warn).sum())
            top = drift.iloc[0]
            text += (
                f"; {n_over} feature(s) above PSI {thresholds.feature_psi_warn:.2f}, largest {top['feature']} "
                f"({top['psi']:.3f})"
            )
        lines.append(text + ".")
    if failures:
        lines.append("Action needed: " + failures[0])
    return lines


def monitor_week(
    settings: Settings,
    scored_on: date,
    features: pd.DataFrame | None,
    champion_reference: dict[str, Any] | None,
    thresholds: MonitoringThresholds | None = None,
    leads: pd.DataFrame | None = None,
) -> MonitoringResult:
    """Monitor one scoring week and write its report; never raises on a bad verdict (see ``gates.check_gates``).

    Args:
        settings: reports_dir, scores_dir, extracts_dir, horizon_days are used.
        scored_on: the week's scoring date (interval end).
        features: the week's scored feature rows (``FEATURE_COLUMNS``), or None to skip feature drift.
        champion_reference: the champion's :func:`~leadscore.monitoring.drift.reference_profile`, or None.
        thresholds: bounds (default :func:`load_thresholds`).
        leads: cleaned leads with person_guid and application_created (default: read from the extracts).
    Returns:
        The :class:`MonitoringResult` (status ok|warning|failed, messages, metrics, report path).
    Raises:
        MonitoringInputError: the week's scores are missing.
        ReferenceProfileError: the reference profile is malformed or profiles features this week lacks.
    """
    thresholds = thresholds or load_thresholds()
    scores = read_week_scores(settings.scores_dir, scored_on)
    p_col, h = probability_column(scores)
    p = scores[p_col].to_numpy(dtype=float)
    n_scored = len(scores)
    tier_counts = {str(k): int(v) for k, v in scores["lead_tier"].astype("string").value_counts().items()}
    control_n = int(scores["control"].sum()) if "control" in scores else 0
    versions = scores["model_version"].astype("string").dropna().unique() if "model_version" in scores else []
    model_version = ", ".join(sorted(map(str, versions)))

    contactable = p[scores["control"].to_numpy() == 0] if "control" in scores else p
    plan = best_contact_list(
        contactable, settings.counselor_capacity, settings.application_value, settings.contact_cost
    )
    contact_text = contact_sentence(plan, settings.application_value, settings.contact_cost)

    leads = load_leads(settings) if leads is None else leads
    realized = realized_performance(settings.scores_dir, leads, scored_on, settings.horizon_days) if len(leads) else []
    flat = as_flat(realized)

    metrics: dict[str, Any] = {
        "scored_on": scored_on.isoformat(),
        "n_scored": n_scored,
        "horizon_days": h,
        "tier_counts": tier_counts,
        "control_n": control_n,
        "model_version": model_version,
        "contact_plan": {k: v for k, v in plan.as_dict().items() if v is not None},
    }
    notes: list[str] = []
    sdrift: dict[str, Any] | None = None
    drift: pd.DataFrame | None = None
    unseen: list[str] = []
    if champion_reference is None:
        metrics["reference_missing"] = True
    else:
        sdrift = score_drift(champion_reference, p)
        metrics["score_psi"] = sdrift["psi"]
        if features is None:
            notes.append("No feature rows were kept for this week: feature drift and missing shares not measured.")
        else:
            drift = feature_drift(champion_reference, features)
            metrics["feature_psi"] = dict(zip(drift["feature"], drift["psi"].astype(float), strict=True))
            metrics["missing_jump"] = dict(zip(drift["feature"], drift["missing_jump"].astype(float), strict=True))
            metrics["missing_share"] = dict(zip(drift["feature"], drift["missing_now"].astype(float), strict=True))
            src = drift.loc[drift["feature"] == "source", "unseen"]
            unseen = list(src.iloc[0]) if len(src) else []
            metrics["unseen_sources"] = unseen

    history_file = history_path(settings.reports_dir)
    prior = up_to(read_history(history_file), scored_on - timedelta(days=1))
    metrics["realized_auc_series"] = _auc_series(prior, scored_on, flat)
    metrics["realized"] = {f"lag{w.lag}": {"scored_on": w.scored_on.isoformat(), **w.metrics} for w in realized}
    failures, warnings = assess(metrics, thresholds)
    status = status_of(failures, warnings)

    row: dict[str, Any] = {
        "scored_on": scored_on.isoformat(),
        "status": status,
        "n_scored": n_scored,
        "model_version": model_version,
        **{f"tier_{k}": tier_counts.get(k, 0) for k in TIERS},
        "control_n": control_n,
        "score_psi": metrics.get("score_psi", np.nan),
        "max_feature_psi": float(drift["psi"].max()) if drift is not None and len(drift) else np.nan,
        "max_feature": str(drift["feature"].iloc[0]) if drift is not None and len(drift) else "",
        "features_drifting": int((drift["psi"] > thresholds.feature_psi_warn).sum()) if drift is not None else 0,
        "unseen_sources": ", ".join(unseen),
        "failures": len(failures),
        "warnings": len(warnings),
        **flat,
    }
    history = up_to(upsert_history(history_file, row), scored_on)

    summary = summary_lines(
        scored_on,
        status,
        failures,
        warnings,
        n_scored,
        tier_counts,
        control_n,
        model_version,
        realized,
        h,
        metrics.get("score_psi"),
        drift,
        thresholds,
    )
    summary.insert(2, contact_text)
    metrics["summary"] = summary
    path = render_weekly_report(
        WeeklyReportData(
            scored_on=scored_on,
            status=status,
            summary=summary,
            failures=failures,
            warnings=warnings,
            n_scored=n_scored,
            tier_counts=tier_counts,
            scores=p,
            thresholds=thresholds,
            history=history,
            realized=realized,
            score_drift=sdrift,
            drift=drift,
            unseen_sources=unseen,
            hazard_ratios=(champion_reference or {}).get("hazard_ratios"),
            model_version=model_version,
            notes=notes,
            contact_plan=plan,
            contact_text=contact_text,
        ),
        report_path(settings.reports_dir, scored_on),
    )
    log.info("monitoring %s: %s; report %s", scored_on.isoformat(), status, path)
    return MonitoringResult(
        scored_on=scored_on,
        status=status,
        messages=failures + warnings,
        metrics=metrics,
        report_path=path,
        history_path=history_file,
        failures=failures,
        warnings=warnings,
    )


__all__ = ["MonitoringInputError", "ReferenceProfileError", "monitor_week", "report_path"]
