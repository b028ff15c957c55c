"""Self-contained HTML reports: matplotlib charts inlined as base64 PNGs, inline CSS, no external assets.

The weekly monitoring report (:func:`render_weekly_report`) and the training insight report share the page
skeleton (:func:`html_page`), the chart encoder (:func:`figure_data_uri`) and the table helper (:func:`html_table`).
"""

from __future__ import annotations

import base64
import html
import io
import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from leadscore.files import atomic_write_bytes
from leadscore.monitoring.gates import MonitoringThresholds
from leadscore.monitoring.realized import RealizedWeek
from leadscore.scoring.outreach import ContactPlan

TIERS = ("A", "B", "C", "D")
TIER_COLORS = {"A": "#1b7837", "B": "#7fbf7b", "C": "#d9d9d9", "D": "#969696"}
STATUS_COLORS = {"ok": "#1b7837", "warning": "#b35806", "failed": "#b2182b"}

_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,Helvetica,Arial,sans-serif;margin:0;color:#1a1a1a;
background:#f6f7f9}
main{max-width:1100px;margin:0 auto;padding:24px}
h1{font-size:1.6rem;margin:0 0 4px}
h2{font-size:1.2rem;margin:28px 0 8px;border-bottom:1px solid #ddd;padding-bottom:4px}
.status{display:inline-block;padding:2px 10px;border-radius:12px;color:#fff;font-weight:600;font-size:.9rem}
.summary{background:#fff;border:1px solid #ddd;border-radius:8px;padding:12px 18px;margin:16px 0}
.summary li{margin:4px 0}.fail{color:#b2182b;font-weight:600}.warn{color:#b35806}
table{border-collapse:collapse;background:#fff;font-size:.85rem;margin:8px 0}
th,td{border:1px solid #ddd;padding:4px 8px;text-align:right}th{background:#eef0f3}
td:first-child,th:first-child{text-align:left}
figure{margin:8px 0;background:#fff;border:1px solid #ddd;border-radius:8px;padding:8px;display:inline-block}
figure img{max-width:100%;height:auto}figcaption{font-size:.85rem;color:#555}
.grid{display:flex;flex-wrap:wrap;gap:12px}.muted{color:#666;font-size:.85rem}
"""


def esc(value: Any) -> str:
    """HTML-escaped text of a value."""
    return html.escape(str(value), quote=True)


def fmt(value: Any, digits: int = 3) -> str:
    """A number for people: thousands separators for counts, ``digits`` decimals, "n/a" for missing."""
    if value is None:
        return "n/a"
    if isinstance(value, int | np.integer):
        return f"{int(value):,}"
    if isinstance(value, float | np.floating):
        if not math.isfinite(float(value)):
            return "n/a"
        if float(value).is_integer() and abs(value) >= 100:
            return f"{int(value):,}"
        return f"{float(value):.{digits}f}"
    return str(value)


def pct(value: Any, digits: int = 1) -> str:
    """A share as a percentage ("n/a" for missing)."""
    if value is None or not isinstance(value, int | float | np.floating) or not math.isfinite(float(value)):
        return "n/a"
    return f"{100 * float(value):.{digits}f} %"


def figure_data_uri(fig: Any) -> str:
    """A matplotlib figure as a ``data:image/png;base64,...`` URI; the figure is closed."""
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _plt() -> Any:
    import matplotlib

    matplotlib.use("Agg")  # reports are rendered in workers without a display
    import matplotlib.pyplot as plt

    return plt


def figure_html(uri: str, caption: str) -> str:
    """An inline image with its caption."""
    return f'<figure><img src="{uri}" alt="{esc(caption)}"><figcaption>{esc(caption)}</figcaption></figure>'


def html_table(frame: pd.DataFrame, formats: dict[str, Any] | None = None, max_rows: int = 50) -> str:
    """A small HTML table of ``frame`` (index dropped); ``formats`` maps a column to a formatting function."""
    formats = formats or {}
    head = "".join(f"<th>{esc(c)}</th>" for c in frame.columns)
    body = []
    for _, row in frame.head(max_rows).iterrows():
        cells = "".join(f"<td>{esc(formats.get(c, fmt)(row[c]))}</td>" for c in frame.columns)
        body.append(f"<tr>{cells}</tr>")
    more = f'<p class="muted">{len(frame) - max_rows} more rows not shown.</p>' if len(frame) > max_rows else ""
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>{more}"


def html_page(
    title: str,
    subtitle: str,
    summary_items: Sequence[str],
    sections: Sequence[tuple[str, str]],
    status: str | None = None,
) -> str:
    """A complete self-contained HTML page.

    Args:
        title: the page title (also the h1).
        subtitle: a line under the title.
        summary_items: the text summary at the top, one bullet each (already-escaped HTML allowed).
        sections: (heading, HTML body) pairs.
        status: optional ok/warning/failed badge.
    """
    badge = ""
    if status:
        badge = (
            f' <span class="status" id="status" style="background:{STATUS_COLORS.get(status, "#555")}">'
            f"{esc(status.upper())}</span>"
        )
    items = "".join(f"<li>{item}</li>" for item in summary_items)
    body = "".join(f"<section><h2>{esc(h)}</h2>{content}</section>" for h, content in sections)
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f'<meta name="viewport" content="width=device-width,initial-scale=1"><title>{esc(title)}</title>'
        f"<style>{_CSS}</style></head><body><main>"
        f'<h1>{esc(title)}{badge}</h1><p class="muted">{esc(subtitle)}</p>'
        f'<div class="summary" id="summary"><strong>Summary</strong><ul>{items}</ul></div>'
        f"{body}</main></body></html>\n"
    )


def contact_sentence(plan: ContactPlan, application_value: float, contact_cost: float) -> str:
    """The best contact list in one sentence: list size, score cut-off, expected applications and net value."""
    economics = (
        f"an application worth {application_value:,.0f} and a contact costing {contact_cost:,.0f}"
        f" (break-even probability {pct(plan.break_even)})"
    )
    if not plan.list_size:
        return f"With {economics}, no lead is worth a contact: no lead's probability is above break-even."
    why = {
        "capacity": "capacity is the limit: more leads are above break-even",
        "break-even": "below that cut-off a contact costs more than it is expected to bring",
        "leads": "every open lead is worth a contact",
    }[plan.limited_by]
    return (
        f"With {economics}, the best list within {plan.capacity:,} contacts is the top {plan.list_size:,} leads, "
        f"down to probability {pct(plan.cutoff, 2)}: {fmt(plan.expected_applications, 1)} expected applications, "
        f"expected net value {plan.expected_net_value:,.0f} ({why})."
    )


# -- weekly charts ---------------------------------------------------------------------------------------------


def chart_score_distribution(score_drift: dict[str, Any] | None, scores: np.ndarray) -> str:
    """This week's score distribution vs the training reference (shares per reference bin), or a histogram."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6.4, 3.4))
    if score_drift:
        bins = score_drift["bins"]
        labels = (
            [f"≤{bins[0]:.3f}"] + [f"{a:.3f}–{b:.3f}" for a, b in itertools.pairwise(bins)] + [f">{bins[-1]:.3f}"]
            if bins
            else ["all"]
        )
        x = np.arange(len(labels))
        ax.bar(x - 0.2, score_drift["reference_shares"], 0.4, label="training reference", color="#8da0cb")
        ax.bar(x + 0.2, score_drift["current_shares"], 0.4, label="this week", color="#fc8d62")
        ax.set_xticks(x, labels, rotation=45, ha="right", fontsize=7)
        ax.set_ylabel("share of leads")
        ax.set_title(f"Score distribution (PSI {score_drift['psi']:.3f})")
        ax.legend(fontsize=8)
    else:
        ax.hist(scores, bins=30, color="#fc8d62")
        ax.set_xlabel("P(apply within H days)")
        ax.set_title("Score distribution this week (no training reference)")
    return figure_data_uri(fig)


def chart_tiers_over_time(history: pd.DataFrame) -> str:
    """Stacked tier sizes per monitoring week."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6.4, 3.2))
    weeks = history["scored_on"].astype(str).tolist()
    bottom = np.zeros(len(weeks))
    for tier in TIERS:
        col = f"tier_{tier}"
        values = history[col].fillna(0).to_numpy(dtype=float) if col in history else np.zeros(len(weeks))
        ax.bar(weeks, values, bottom=bottom, label=tier, color=TIER_COLORS[tier])
        bottom += values
    ax.set_ylabel("leads")
    ax.set_title("Tier sizes per week")
    ax.legend(ncols=4, fontsize=8)
    ax.tick_params(axis="x", rotation=45, labelsize=7)
    return figure_data_uri(fig)


def _series(history: pd.DataFrame, col: str) -> np.ndarray:
    if col not in history:
        return np.full(len(history), np.nan)
    return pd.to_numeric(history[col], errors="coerce").to_numpy(dtype=float, na_value=np.nan)


def chart_realized_over_time(history: pd.DataFrame, auc_floor: float) -> str:
    """Realized AUC (scores of H days before each week) and calibration slope over time."""
    plt = _plt()
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(9.6, 3.2))
    weeks = history["scored_on"].astype(str).tolist()
    x = np.arange(len(weeks))
    for col, label, style in (
        ("realized_auc", "H days ago", "o-"),
        ("realized_auc_2h", "2H", "s--"),
        ("realized_auc_3h", "3H", "^:"),
    ):
        y = _series(history, col)
        if np.isfinite(y).any():
            ax1.plot(x, y, style, label=label)
    ax1.axhline(auc_floor, color="#b2182b", lw=1, ls="--", label=f"floor {auc_floor:.2f}")
    ax1.set_title("Realized AUC of past scores")
    ax1.set_ylim(0.4, 1.0)
    ax1.legend(fontsize=7)
    slope = _series(history, "realized_calibration_slope")
    ax2.plot(x, slope, "o-", color="#4d4d4d", label="calibration slope")
    ax2.axhline(1.0, color="#1b7837", lw=1, ls="--", label="ideal 1.0")
    ax2.set_title("Calibration slope of past scores")
    ax2.legend(fontsize=7)
    for ax in (ax1, ax2):
        ax.set_xticks(x, weeks, rotation=45, ha="right", fontsize=7)
    return figure_data_uri(fig)


def chart_calibration(weeks: Sequence[RealizedWeek]) -> str:
    """Observed vs predicted application rate of each judged score date."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(4.2, 3.6))
    top = 0.0
    for w in weeks:
        c = w.calibration
        if len(c):
            ax.plot(c["mean_predicted"], c["observed_rate"], "o-", ms=3, label=f"{w.scored_on} (lag {w.lag}H)")
            top = max(top, float(np.nanmax(c[["mean_predicted", "observed_rate"]].to_numpy(dtype=float))))
    top = top * 1.05 or 1.0
    ax.plot([0, top], [0, top], color="#999", lw=1, ls="--", label="perfect")
    ax.set_xlabel("predicted")
    ax.set_ylabel("observed")
    ax.set_title("Calibration of past scores")
    ax.legend(fontsize=7)
    return figure_data_uri(fig)


def chart_drifting_features(drift: pd.DataFrame, warn: float, fail: float, top: int = 12) -> str:
    """Horizontal bars of the largest feature PSIs with the warning and failure lines."""
    plt = _plt()
    d = drift.head(top).iloc[::-1]
    fig, ax = plt.subplots(figsize=(6.4, 0.3 * len(d) + 1.2))
    colors = ["#b2182b" if v > fail else "#e08214" if v > warn else "#8da0cb" for v in d["psi"]]
    ax.barh(d["feature"].astype(str), d["psi"], color=colors)
    ax.axvline(warn, color="#e08214", ls="--", lw=1, label=f"warning {warn:.2f}")
    ax.axvline(fail, color="#b2182b", ls="--", lw=1, label=f"large {fail:.2f}")
    ax.set_xlabel("PSI vs training reference")
    ax.set_title("Top drifting features")
    ax.tick_params(axis="y", labelsize=7)
    ax.legend(fontsize=7)
    return figure_data_uri(fig)


def chart_hazard_ratios(records: Sequence[dict[str, Any]], top: int = 15) -> str:
    """Forest plot of the champion's largest hazard ratios (log scale)."""
    plt = _plt()
    recs = sorted(records, key=lambda r: -abs(math.log(max(r["hazard_ratio"], 1e-9))))[:top][::-1]
    fig, ax = plt.subplots(figsize=(6.4, 0.3 * len(recs) + 1.2))
    y = np.arange(len(recs))
    hr = np.array([r["hazard_ratio"] for r in recs])
    if all("lower" in r for r in recs):
        lo = hr - np.array([r["lower"] for r in recs])
        hi = np.array([r["upper"] for r in recs]) - hr
        ax.errorbar(hr, y, xerr=[np.clip(lo, 0, None), np.clip(hi, 0, None)], fmt="o", color="#2166ac", ms=4)
    else:
        ax.plot(hr, y, "o", color="#2166ac")
    ax.axvline(1.0, color="#999", lw=1)
    ax.set_xscale("log")
    ax.set_yticks(y, [r["label"] for r in recs], fontsize=7)
    ax.set_xlabel("hazard ratio (log scale; >1 applies sooner)")
    ax.set_title("Champion's hazard ratios")
    return figure_data_uri(fig)


# -- the weekly page -------------------------------------------------------------------------------------------


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
    atomic_write_bytes(Path(out_path), page.encode("utf-8"))
    return Path(out_path)
