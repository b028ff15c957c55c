"""The training run's insight report for marketing and admissions.

What drives applications (hazard ratios in plain language), conversion by source and by lead age (Kaplan–Meier
curves from lifelines), and the best weekly outreach list size for a counselor capacity (expected applications
captured by the top-k leads). One self-contained HTML file.

Training rows are the landmark rows of the training set: one row per lead and landmark at which the lead was still
open, with the feature columns, ``person_guid``, ``duration`` (days from the landmark to the application or to
censoring) and ``event`` (the application happened).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np
import pandas as pd

from leadscore.data.tables import AGE_COLUMN, FEATURE_COLUMNS
from leadscore.files import atomic_write_bytes
from leadscore.monitoring.drift import hazard_ratio_records
from leadscore.monitoring.report import (
    _plt,
    chart_hazard_ratios,
    contact_sentence,
    esc,
    figure_data_uri,
    figure_html,
    fmt,
    html_page,
    html_table,
    pct,
)
from leadscore.scoring.outreach import ContactPlan, best_contact_list
from leadscore.settings import Settings

SAMPLE_ROWS = 50_000
TOP_SOURCES = 6
KM_DAYS = (7, 30, 90, 180)


class InsightInputError(ValueError):
    """The training rows lack a column the insight report needs, or are empty."""


class ProbabilityModel(Protocol):
    """What the report needs from the model (``LeadModel`` provides it)."""

    horizon_days: int

    def predict_proba(self, features: pd.DataFrame) -> np.ndarray: ...


def _require(rows: pd.DataFrame, columns: tuple[str, ...]) -> None:
    missing = [c for c in columns if c not in rows.columns]
    if missing:
        raise InsightInputError(f"training rows lack {missing}; pass the training set's landmark rows")
    if len(rows) == 0:
        raise InsightInputError("training rows are empty: nothing to report on")


def lead_level(rows: pd.DataFrame) -> pd.DataFrame:
    """One row per lead from its earliest landmark: days from origin to application or censoring, event, source.

    Returns:
        Columns person_guid, source, time (days since origin), event (bool).
    """
    first = rows.sort_values(AGE_COLUMN, kind="stable").drop_duplicates("person_guid", keep="first")
    return pd.DataFrame(
        {
            "person_guid": first["person_guid"].to_numpy(),
            "source": first["source"].astype("string").fillna("(none)").to_numpy(dtype=object),
            "time": first[AGE_COLUMN].to_numpy(dtype=float) + first["duration"].to_numpy(dtype=float),
            "event": first["event"].to_numpy(dtype=bool),
        }
    )


def km_conversion(time: np.ndarray, event: np.ndarray, days: tuple[int, ...] = KM_DAYS) -> dict[int, float]:
    """Kaplan–Meier share applied (1 - S(t)) at each of ``days``, censoring handled."""
    from lifelines import KaplanMeierFitter

    km = KaplanMeierFitter().fit(np.clip(np.asarray(time, dtype=float), 1e-9, None), np.asarray(event, dtype=bool))
    surv = km.survival_function_at_times(list(days)).to_numpy(dtype=float)
    return {d: float(1 - s) for d, s in zip(days, surv, strict=True)}


def conversion_by_source(leads: pd.DataFrame, days: tuple[int, ...] = KM_DAYS) -> pd.DataFrame:
    """Kaplan–Meier conversion by lead source: leads, applications and share applied by each of ``days``."""
    rows = []
    for source, g in leads.groupby("source", sort=False):
        conv = km_conversion(g["time"].to_numpy(), g["event"].to_numpy(), days)
        rows.append(
            {
                "source": source,
                "leads": len(g),
                "applied": int(g["event"].sum()),
                **{f"by day {d}": conv[d] for d in days},
            }
        )
    out = pd.DataFrame(rows)
    return out.sort_values("leads", ascending=False, kind="stable").reset_index(drop=True)


def conversion_by_age(rows: pd.DataFrame, horizon_days: int, landmarks: tuple[int, ...]) -> pd.DataFrame:
    """P(apply within H days | still open at lead age a) per landmark age, Kaplan–Meier from the landmark rows."""
    age = np.floor(rows[AGE_COLUMN].to_numpy(dtype=float))
    out = []
    for a in landmarks:
        sel = age == a
        if sel.sum() < 5:
            continue
        conv = km_conversion(
            rows["duration"].to_numpy(dtype=float)[sel], rows["event"].to_numpy(dtype=bool)[sel], (horizon_days,)
        )
        out.append(
            {
                "lead age (days)": int(a),
                "open leads": int(sel.sum()),
                f"apply within {horizon_days} days": conv[horizon_days],
            }
        )
    return pd.DataFrame(out)


@dataclass(frozen=True)
class OutreachPlan:
    """Expected applications from calling the top-k leads of a weekly pool.

    Attributes:
        pool: leads scored in a typical week.
        capacity: counselor calls per week.
        best_k: recommended list size: with an application value and contact cost, the list that maximises expected
            net value within capacity (``contact``); without them the capacity, or fewer when leads beyond
            ``k_above_average`` are less likely to apply than an average lead.
        expected_at_capacity: expected applications among the top ``capacity`` leads.
        expected_total: expected applications in the whole pool.
        k_above_average: leads whose probability is at least the pool's mean.
        table: k, expected applications, share of all expected, mean probability, k-th lead's probability, lift.
        curve: (k, expected) points for the chart.
        contact: the expected-net-value optimum (``scoring.outreach``), or None without economics.
    """

    pool: int
    capacity: int
    best_k: int
    expected_at_capacity: float
    expected_total: float
    k_above_average: int
    table: pd.DataFrame
    curve: tuple[np.ndarray, np.ndarray]
    contact: ContactPlan | None = None


def outreach_plan(
    p: np.ndarray,
    pool: int,
    capacity: int,
    application_value: float | None = None,
    contact_cost: float | None = None,
) -> OutreachPlan:
    """Expected applications captured by the top-k of a weekly pool, from a sample ``p`` of its probabilities.

    The sample stands for the pool: the top k of the pool are the top ``k / pool`` share of the sample, and
    expected applications scale by ``pool / len(p)``. With ``application_value`` and ``contact_cost`` the table
    gains the expected net value of each list size and ``best_k`` is the list that maximises it within capacity.

    Raises:
        InsightInputError: empty sample, or pool/capacity not positive.
    """
    p = np.sort(np.asarray(p, dtype=float))[::-1]
    if p.size == 0 or pool <= 0 or capacity <= 0:
        raise InsightInputError(
            f"outreach plan needs probabilities, a positive pool and capacity "
            f"(got {p.size} probabilities, pool {pool}, capacity {capacity})"
        )
    scale = pool / p.size
    cum = np.concatenate([[0.0], np.cumsum(p)]) * scale

    def expected(k: int) -> float:
        j = min(p.size, max(0, round(k / scale)))
        return float(cum[j])

    def kth(k: int) -> float:
        return float(p[min(p.size - 1, max(0, math.ceil(k / scale) - 1))])

    total = float(cum[-1])
    k_avg = round(float((p >= p.mean()).sum()) * scale)
    capacity = min(capacity, pool)
    ks = sorted({capacity, *[max(1, int(pool * s)) for s in (0.01, 0.02, 0.05, 0.1, 0.2, 0.3, 0.5)], pool})
    contact = None
    best_k = min(capacity, max(1, k_avg))
    if application_value is not None and contact_cost is not None:
        contact = best_contact_list(p, capacity, application_value, contact_cost, weight=scale)
        best_k = contact.list_size
        if best_k:
            ks = sorted({*ks, best_k})
    rows = []
    for k in ks:
        e = expected(k)
        row = {
            "list size k": k,
            "expected applications": e,
            "share of all expected": e / total if total else np.nan,
            "mean probability": e / k,
            "k-th lead's probability": kth(k),
            "lift vs random": (e / k) / (total / pool) if total else np.nan,
        }
        if contact is not None:
            row["expected net value"] = e * float(application_value) - k * float(contact_cost)
        rows.append(row)
    grid = np.unique(np.linspace(1, pool, min(pool, 200)).astype(int))
    curve = (grid, np.array([expected(int(k)) for k in grid]))
    return OutreachPlan(
        pool=pool,
        capacity=capacity,
        best_k=best_k,
        expected_at_capacity=expected(capacity),
        expected_total=total,
        k_above_average=k_avg,
        table=pd.DataFrame(rows),
        curve=curve,
        contact=contact,
    )


def _sentences(table: pd.DataFrame) -> list[str]:
    needed = {"p", "hr_contrast", "feature", "level", "reference", "high", "low"}
    if needed <= set(table.columns):
        from leadscore.model.interpret import effect_sentences

        return effect_sentences(table)
    hr = table["hr_contrast"] if "hr_contrast" in table else table["hazard_ratio"]
    label = table["covariate"] if "covariate" in table else table["feature"]
    order = np.argsort(-np.abs(np.log(hr.to_numpy(dtype=float))))[:8]
    return [f"{label.iloc[i]}: applies at {hr.iloc[i]:.2f}× the rate, other things equal." for i in order]


def _chart_km_by_source(leads: pd.DataFrame, sources: list[str], max_days: int = 180) -> str:
    from lifelines import KaplanMeierFitter

    plt = _plt()
    fig, ax = plt.subplots(figsize=(6.4, 3.8))
    for s in sources:
        g = leads[leads["source"] == s]
        km = KaplanMeierFitter().fit(np.clip(g["time"].to_numpy(dtype=float), 1e-9, None), g["event"].to_numpy(bool))
        sf = km.survival_function_
        t = sf.index.to_numpy(dtype=float)
        keep = t <= max_days
        ax.step(t[keep], 1 - sf.iloc[:, 0].to_numpy()[keep], where="post", label=f"{s} ({len(g):,})")
    ax.set_xlabel("days since first origin")
    ax.set_ylabel("share applied (Kaplan–Meier)")
    ax.set_title("Conversion by source")
    ax.legend(fontsize=7)
    return figure_data_uri(fig)


def _chart_by_age(by_age: pd.DataFrame, horizon_days: int) -> str:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6.4, 3.2))
    col = f"apply within {horizon_days} days"
    ax.bar(by_age["lead age (days)"].astype(str), by_age[col], color="#4393c3")
    ax.set_xlabel("lead age when still open (days)")
    ax.set_ylabel(f"P(apply within {horizon_days} d)")
    ax.set_title("Conversion by lead age")
    return figure_data_uri(fig)


def _chart_outreach(plan: OutreachPlan) -> str:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6.4, 3.4))
    k, e = plan.curve
    ax.plot(k, e, color="#2166ac", label="top-k by score")
    ax.plot([0, plan.pool], [0, plan.expected_total], color="#999", ls="--", label="random k")
    ax.axvline(plan.capacity, color="#b2182b", ls=":", label=f"capacity {plan.capacity:,}")
    ax.set_xlabel("leads called per week (k)")
    ax.set_ylabel("expected applications")
    ax.set_title("Expected applications captured by the top-k leads")
    ax.legend(fontsize=7)
    return figure_data_uri(fig)


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
