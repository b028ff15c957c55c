"""The training run's insight report for marketing and admissions.

What drives applications (hazard ratios in plain language), conversion by source and by lead age (Kaplan–Meier
curves from lifelines), and the best weekly outreach list size for a counselor capacity (expected applications
captured by the top-k leads). One self-contained HTML file.

Training rows are the landmark rows of the training set: one row per lead and landmark at which the lead was still
open, with the feature columns, ``person_guid``, ``duration`` (days from the landmark to the application or to
censoring) and ``event`` (the application happened).
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

import numpy as np
import pandas as pd

from leadscore.data.tables import AGE_COLUMN, FEATURE_COLUMNS
from leadscore.files import atomic_write_bytes
from leadscore.monitoring.conversion import (
    KM_DAYS,
    InsightInputError,
    _require,
    conversion_by_age,
    conversion_by_source,
    km_conversion,
    lead_level,
)
from leadscore.monitoring.drift import hazard_ratio_records
from leadscore.monitoring.insight_charts import chart_by_age as _chart_by_age
from leadscore.monitoring.insight_charts import chart_km_by_source as _chart_km_by_source
from leadscore.monitoring.insight_charts import chart_outreach as _chart_outreach
from leadscore.monitoring.outreach_plan import OutreachPlan, outreach_plan
from leadscore.monitoring.report_html import contact_sentence, esc, figure_html, fmt, html_page, html_table, pct
from leadscore.monitoring.weekly_charts import chart_hazard_ratios
from leadscore.settings import Settings

__all__ = [
    "KM_DAYS",
    "SAMPLE_ROWS",
    "TOP_SOURCES",
    "InsightInputError",
    "OutreachPlan",
    "ProbabilityModel",
    "conversion_by_age",
    "conversion_by_source",
    "km_conversion",
    "lead_level",
    "outreach_plan",
    "training_insight_report",
]

SAMPLE_ROWS = 50_000
TOP_SOURCES = 6


class ProbabilityModel(Protocol):
    """What the report needs from the model (``LeadModel`` provides it)."""

    horizon_days: int

    def predict_proba(self, features: pd.DataFrame) -> np.ndarray: ...


def _sentences(table: pd.DataFrame) -> list[str]:
    needed = {"p", "hr_contrast", "feature", "level", "reference", "high", "low"}
    if needed <= set(table.columns):
        from leadscore.model.interpret import effect_sentences

        return effect_sentences(table)
    hr = table["hr_contrast"] if "hr_contrast" in table else table["hazard_ratio"]
    label = table["covariate"] if "covariate" in table else table["feature"]
    order = np.argsort(-np.abs(np.log(hr.to_numpy(dtype=float))))[:8]
    return [f"{label.iloc[i]}: applies at {hr.iloc[i]:.2f}× the rate, other things equal." for i in order]


def training_insight_report(
    settings: Settings,
    training_rows: pd.DataFrame,
    hazard_ratios_df: pd.DataFrame | None,
    model: ProbabilityModel,
    out_path: Path,
    capacity: int | None = None,
    weekly_pool: int | None = None,
    seed: int = 0,
    candidates: pd.DataFrame | None = None,
) -> Path:
    """Write the training insight report.

    Args:
        settings: horizon_days, landmark_days, tier_cuts, lookback_days, training_window_days are used.
        training_rows: landmark rows (person_guid, FEATURE_COLUMNS, duration, event).
        hazard_ratios_df: ``model.interpret.hazard_ratios`` of the Cox model, or None (section left out).
        model: the champion (anything with ``predict_proba`` over FEATURE_COLUMNS).
        out_path: the HTML file to write.
        capacity: counselor calls per week (default: ``settings.counselor_capacity``).
        weekly_pool: leads scored per week (default: estimated as the leads entering in ``lookback_days`` out of
            the training window).
        seed: sampling seed for the probabilities (at most 50,000 rows are scored).
        candidates: ``model.train.candidate_table`` (status, skipped reasons, holdout metrics and calibration of each
            candidate), shown first when given.
    Returns:
        ``out_path``.
    Raises:
        InsightInputError: required columns missing or no rows.
    """
    _require(training_rows, ("person_guid", "duration", "event", AGE_COLUMN, "source"))
    h = settings.horizon_days
    leads = lead_level(training_rows)
    by_source = conversion_by_source(leads)
    by_age = conversion_by_age(training_rows, h, settings.landmark_days)

    rows = training_rows
    if len(rows) > SAMPLE_ROWS:
        idx = np.random.default_rng(seed).choice(len(rows), SAMPLE_ROWS, replace=False)
        rows = rows.iloc[np.sort(idx)]
    p = np.asarray(model.predict_proba(rows[[c for c in FEATURE_COLUMNS if c in rows.columns]]), dtype=float)
    if weekly_pool is None:
        weekly_pool = max(1, round(len(leads) * min(1.0, settings.lookback_days / settings.training_window_days)))
    if capacity is None:
        capacity = settings.counselor_capacity
    plan = outreach_plan(p, weekly_pool, max(1, capacity), settings.application_value, settings.contact_cost)

    overall = km_conversion(leads["time"].to_numpy(), leads["event"].to_numpy(), (h,))[h]
    sentences = _sentences(hazard_ratios_df) if hazard_ratios_df is not None and len(hazard_ratios_df) else []
    best = by_source[by_source["leads"] >= 30] if (by_source["leads"] >= 30).any() else by_source
    hi = best.sort_values(f"by day {KM_DAYS[1]}", ascending=False).iloc[0]
    lo = best.sort_values(f"by day {KM_DAYS[1]}").iloc[0]

    summary = [
        esc(
            f"{len(leads):,} leads in {len(training_rows):,} landmark rows; {pct(overall)} apply within {h} days of "
            "their first origin (Kaplan–Meier)."
        ),
        esc(
            f"Best source: {hi['source']} ({pct(hi[f'by day {KM_DAYS[1]}'])} by day {KM_DAYS[1]}); weakest: "
            f"{lo['source']} ({pct(lo[f'by day {KM_DAYS[1]}'])})."
        ),
        esc(
            f"With {plan.capacity:,} calls a week out of about {plan.pool:,} open leads, the top {plan.capacity:,} "
            f"by score hold {fmt(plan.expected_at_capacity, 1)} expected applications, "
            f"{pct(plan.expected_at_capacity / plan.expected_total if plan.expected_total else None)} of all "
            f"{fmt(plan.expected_total, 1)}; best weekly list size: {plan.best_k:,}."
        ),
    ]
    if plan.contact is not None:
        summary.append(esc(contact_sentence(plan.contact, settings.application_value, settings.contact_cost)))
    if sentences:
        summary.append(esc("Strongest driver: " + sentences[0]))

    sections: list[tuple[str, str]] = []
    if candidates is not None and len(candidates):
        skipped = candidates["status"].astype(str).str.startswith("skipped")
        if skipped.any():
            summary.append(
                esc(f"{int(skipped.sum())} candidate(s) could not be fitted and were skipped; see Candidates.")
            )
        sections.append(
            (
                "Candidates",
                '<p class="muted">Holdout metrics of each candidate fitted on the training block; calibration slope 1 '
                "and intercept 0 are ideal. A skipped candidate gives its reason.</p>"
                + html_table(candidates, formats={"auc": lambda v: fmt(v, 4), "log_loss": lambda v: fmt(v, 4)}),
            )
        )
    if hazard_ratios_df is not None and len(hazard_ratios_df):
        body = (
            "<ul>" + "".join(f"<li>{esc(s)}</li>" for s in sentences) + "</ul>"
            if sentences
            else ('<p class="muted">No effect is both strong and significant.</p>')
        )
        body += figure_html(chart_hazard_ratios(hazard_ratio_records(hazard_ratios_df)), "Hazard ratios")
        sections.append(("What drives applications", body))
    top_sources = by_source["source"].head(TOP_SOURCES).tolist()
    sections.append(
        (
            "Conversion by source",
            figure_html(_chart_km_by_source(leads, top_sources), "Kaplan–Meier conversion by source")
            + html_table(by_source, formats={f"by day {d}": pct for d in KM_DAYS}),
        )
    )
    if len(by_age):
        sections.append(
            (
                "Conversion by lead age",
                figure_html(_chart_by_age(by_age, h), "Conversion by lead age")
                + html_table(by_age, formats={f"apply within {h} days": pct}),
            )
        )
    explain = f"<p>Pool: about {plan.pool:,} open leads a week; capacity: {plan.capacity:,} calls. "
    if plan.contact is not None:
        explain += esc(contact_sentence(plan.contact, settings.application_value, settings.contact_cost)) + "</p>"
    else:
        explain += (
            f"Beyond the top {plan.k_above_average:,} leads, each extra call reaches a lead less likely to apply "
            f"than the average lead, so the recommended list is {plan.best_k:,}.</p>"
        )
    sections.append(
        (
            "Best weekly outreach list size",
            explain
            + figure_html(_chart_outreach(plan), "Expected applications by list size")
            + html_table(
                plan.table,
                formats={
                    "share of all expected": pct,
                    "mean probability": pct,
                    "k-th lead's probability": pct,
                    "expected net value": lambda v: f"{v:,.0f}",
                },
            ),
        )
    )
    page = html_page(
        title="LeadScore training insight",
        subtitle=f"Horizon {h} days · rows {len(training_rows):,}",
        summary_items=summary,
        sections=sections,
    )
    atomic_write_bytes(Path(out_path), page.encode("utf-8"))
    return Path(out_path)
