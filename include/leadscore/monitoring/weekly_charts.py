"""The matplotlib charts of the weekly monitoring report, each returned as a ``data:`` URI; the hazard-ratio forest
(:func:`chart_hazard_ratios`) is shared with the training insight report."""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from leadscore.monitoring.realized import RealizedWeek
from leadscore.monitoring.report_html import _plt, figure_data_uri

TIERS = ("A", "B", "C", "D")
TIER_COLORS = {"A": "#1b7837", "B": "#7fbf7b", "C": "#d9d9d9", "D": "#969696"}


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
