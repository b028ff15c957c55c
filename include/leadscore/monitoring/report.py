"""The weekly monitoring report (:func:`render_weekly_report`): one self-contained HTML page of the week's findings.

The page skeleton, formatting and table helpers it shares with the training insight report are in
``monitoring.report_html``; its charts in ``monitoring.weekly_charts``. Both are re-exported here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from leadscore import faults
from leadscore.files import atomic_write
from leadscore.monitoring.gates import MonitoringThresholds
from leadscore.monitoring.realized import RealizedWeek
from leadscore.monitoring.report_html import (  # noqa: F401  (_CSS, _plt: importable from here as before)
    _CSS,
    STATUS_COLORS,
    _plt,
    contact_sentence,
    esc,
    figure_data_uri,
    figure_html,
    fmt,
    html_page,
    html_table,
    pct,
)
from leadscore.monitoring.weekly_charts import (  # noqa: F401  (_series: importable from here as before)
    TIER_COLORS,
    TIERS,
    _series,
    chart_calibration,
    chart_drifting_features,
    chart_hazard_ratios,
    chart_realized_over_time,
    chart_score_distribution,
    chart_tiers_over_time,
)
from leadscore.scoring.outreach import ContactPlan

__all__ = [
    "STATUS_COLORS",
    "TIERS",
    "TIER_COLORS",
    "WeeklyReportData",
    "chart_calibration",
    "chart_drifting_features",
    "chart_hazard_ratios",
    "chart_realized_over_time",
    "chart_score_distribution",
    "chart_tiers_over_time",
    "contact_sentence",
    "esc",
    "figure_data_uri",
    "figure_html",
    "fmt",
    "html_page",
    "html_table",
    "pct",
    "render_weekly_report",
]


@dataclass
class WeeklyReportData:
    """Everything the weekly page shows (built by ``monitoring.weekly.monitor_week``)."""

    scored_on: date
    status: str
    summary: list[str]
    failures: list[str]
    warnings: list[str]
    n_scored: int
    tier_counts: dict[str, int]
    scores: np.ndarray
    thresholds: MonitoringThresholds
    history: pd.DataFrame
    realized: list[RealizedWeek] = field(default_factory=list)
    score_drift: dict[str, Any] | None = None
    drift: pd.DataFrame | None = None
    unseen_sources: list[str] = field(default_factory=list)
    hazard_ratios: list[dict[str, Any]] | None = None
    model_version: str = ""
    notes: list[str] = field(default_factory=list)
    contact_plan: ContactPlan | None = None
    contact_text: str = ""


def _realized_table(weeks: Sequence[RealizedWeek]) -> pd.DataFrame:
    rows = []
    for w in weeks:
        m = w.metrics
        rows.append(
            {
                "scores of": w.scored_on.isoformat(),
                "lag": f"{w.lag}H",
                "leads": int(m["n"]),
                "applied": int(m["positives"]),
                "rate": pct(m["base_rate"]),
                "AUC": fmt(m["auc"]),
                "log loss": fmt(m["log_loss"], 4),
                "cal. slope": fmt(m["calibration_slope"], 2),
                "cal. intercept": fmt(m["calibration_intercept"], 2),
                "tier A rate": pct(m["tier_a_conversion"]),
                "tier A predicted": pct(m["tier_a_predicted"]),
                "control rate": pct(m["control_conversion"]),
                "scored rate": pct(m["scored_conversion"]),
                "lift vs control": fmt(m["control_lift"], 2),
            }
        )
    return pd.DataFrame(rows)


def render_weekly_report(data: WeeklyReportData, out_path: Path) -> Path:
    """Write the weekly monitoring page.

    Args:
        data: the week's findings, metrics and history (rows up to this week).
        out_path: the HTML file to write (atomically).
    Returns:
        ``out_path``.
    """
    t = data.thresholds
    sections: list[tuple[str, str]] = []
    if data.failures or data.warnings:
        items = [f'<li class="fail">{esc(m)}</li>' for m in data.failures]
        items += [f'<li class="warn">{esc(m)}</li>' for m in data.warnings]
        sections.append(("Alerts", f'<ul id="alerts">{"".join(items)}</ul>'))

    tiers = pd.DataFrame(
        {
            "tier": list(TIERS),
            "leads": [int(data.tier_counts.get(k, 0)) for k in TIERS],
            "share": [pct(data.tier_counts.get(k, 0) / data.n_scored if data.n_scored else None) for k in TIERS],
        }
    )
    figs = figure_html(
        chart_score_distribution(data.score_drift, data.scores),
        "Score distribution this week vs the training reference",
    )
    if len(data.history):
        figs += figure_html(chart_tiers_over_time(data.history), "Tier sizes over time")
    sections.append(("This week's scores", f'<div class="grid">{figs}</div>{html_table(tiers)}'))

    if data.contact_plan is not None:
        c = data.contact_plan
        plan = pd.DataFrame(
            {
                "leads that may be contacted": [c.leads],
                "capacity": [c.capacity],
                "best list size": [c.list_size],
                "score cut-off (p)": [c.cutoff],
                "break-even p": [c.break_even],
                "expected applications": [c.expected_applications],
                "expected net value": [c.expected_net_value],
            }
        )
        body = f'<p id="contact-plan">{esc(data.contact_text)}</p>' + html_table(
            plan,
            formats={
                "score cut-off (p)": lambda v: "n/a" if v is None or pd.isna(v) else f"{v:.4f}",
                "break-even p": lambda v: f"{v:.4f}",
                "expected net value": lambda v: f"{v:,.0f}",
            },
        )
        sections.append(("Who to contact this week", body))

    if data.realized:
        body = html_table(_realized_table(data.realized), formats={c: str for c in _realized_table(data.realized)})
        figs = figure_html(
            chart_realized_over_time(data.history, t.auc_floor), "Realized AUC and calibration over time"
        )
        figs += figure_html(chart_calibration(data.realized), "Observed vs predicted rate of past scores")
        sections.append(("Realized performance", f'<div class="grid">{figs}</div>{body}'))
    else:
        sections.append(
            (
                "Realized performance",
                '<p id="no-realized">No past scores have a fully elapsed horizon '
                "yet: realized performance starts H days after the first scored week.</p>",
            )
        )

    if data.drift is not None and len(data.drift):
        d = data.drift
        fig = figure_html(chart_drifting_features(d, t.feature_psi_warn, t.score_psi_fail), "Top drifting features")
        table = d.assign(unseen=d["unseen"].map(lambda u: ", ".join(u)))[
            ["feature", "psi", "missing_ref", "missing_now", "missing_jump", "unseen"]
        ]
        body = fig + html_table(
            table, formats={"missing_ref": pct, "missing_now": pct, "missing_jump": pct, "unseen": str}, max_rows=40
        )
        if data.unseen_sources:
            body += f'<p class="warn">Unseen source labels: {esc(", ".join(data.unseen_sources))}</p>'
        sections.append(("Drift against the training reference", body))
    else:
        sections.append(
            (
                "Drift against the training reference",
                '<p class="muted">Feature drift not measured this week (no reference profile or no feature rows).</p>',
            )
        )

    if data.hazard_ratios:
        sections.append(
            (
                "What drives the champion",
                figure_html(chart_hazard_ratios(data.hazard_ratios), "Champion's hazard ratios"),
            )
        )
    if len(data.history):
        cols = [
            c
            for c in (
                "scored_on",
                "status",
                "n_scored",
                "score_psi",
                "max_feature_psi",
                "realized_scored_on",
                "realized_n",
                "realized_auc",
                "realized_calibration_slope",
                "realized_tier_a_conversion",
            )
            if c in data.history
        ]
        sections.append(("History", html_table(data.history[cols].iloc[::-1], max_rows=26)))
    if data.notes:
        sections.append(("Notes", "".join(f'<p class="muted">{esc(n)}</p>' for n in data.notes)))

    page = html_page(
        title=f"LeadScore weekly report {data.scored_on.isoformat()}",
        subtitle=f"Model {data.model_version or 'n/a'} · {data.n_scored:,} leads scored · "
        f"thresholds: AUC floor {t.auc_floor:.2f}, score PSI fail {t.score_psi_fail:.2f}",
        summary_items=[esc(s) for s in data.summary],
        sections=sections,
        status=data.status,
    )
    data = page.encode("utf-8")

    def write(fh: Any) -> None:  # in two halves, with a kill point between them (crash tests)
        fh.write(data[: len(data) // 2])
        fh.flush()
        faults.point("report.write.mid")
        fh.write(data[len(data) // 2 :])

    atomic_write(Path(out_path), write)
    return Path(out_path)
