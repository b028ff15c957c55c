"""The matplotlib charts of the training insight report (conversion by source and by lead age, the outreach curve),
each returned as a ``data:`` URI."""

from __future__ import annotations

import numpy as np
import pandas as pd

from leadscore.monitoring.outreach_plan import OutreachPlan
from leadscore.monitoring.report_html import _plt, figure_data_uri


def chart_km_by_source(leads: pd.DataFrame, sources: list[str], max_days: int = 180) -> str:
    """Kaplan–Meier share applied by days since first origin, one step curve per source (up to ``max_days``)."""
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


def chart_by_age(by_age: pd.DataFrame, horizon_days: int) -> str:
    """Bars of P(apply within H days) per lead age at which the lead is still open (``conversion_by_age``)."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6.4, 3.2))
    col = f"apply within {horizon_days} days"
    ax.bar(by_age["lead age (days)"].astype(str), by_age[col], color="#4393c3")
    ax.set_xlabel("lead age when still open (days)")
    ax.set_ylabel(f"P(apply within {horizon_days} d)")
    ax.set_title("Conversion by lead age")
    return figure_data_uri(fig)


def chart_outreach(plan: OutreachPlan) -> str:
    """Expected applications captured by the top-k leads against random k, with the capacity line."""
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
