"""Evaluation plots (matplotlib, Agg backend): ROC, calibration, lift by decile, hazard-ratio forest, KM by tier."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from lifelines import KaplanMeierFitter
from sklearn.metrics import roc_curve

from leadscore.model.evaluate import calibration_curve, lift_by_decile

TIERS = ("A", "B", "C", "D")


def assign_tiers(p: np.ndarray, cuts: tuple[float, ...]) -> np.ndarray:
    """Tier per row by rank: the top ``cuts[0]`` share is A, up to ``cuts[1]`` B, up to ``cuts[2]`` C, the rest D."""
    rank = np.empty(len(p))
    rank[np.argsort(-p, kind="stable")] = (np.arange(len(p)) + 1) / max(len(p), 1)
    tiers = np.full(len(p), "D", dtype=object)
    for tier, cut in reversed(list(zip(TIERS[:3], cuts, strict=True))):
        tiers[rank <= cut] = tier
    return tiers


def _save(fig: plt.Figure, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def plot_roc(y: np.ndarray, scores: dict[str, np.ndarray], path: Path) -> Path:
    """ROC curves of several score vectors on the same outcomes."""
    fig, ax = plt.subplots(figsize=(5, 5))
    for name, p in scores.items():
        fpr, tpr, _ = roc_curve(y, p)
        ax.plot(fpr, tpr, label=name)
    ax.plot([0, 1], [0, 1], color="grey", linestyle=":")
    ax.set(xlabel="false positive rate", ylabel="true positive rate", title="ROC (holdout)")
    ax.legend()
    return _save(fig, path)


def plot_calibration(y: np.ndarray, scores: dict[str, np.ndarray], path: Path) -> Path:
    """Observed rate vs mean predicted probability in 10 equal-count bins."""
    fig, ax = plt.subplots(figsize=(5, 5))
    top = 0.0
    for name, p in scores.items():
        c = calibration_curve(y, p)
        ax.plot(c["mean_predicted"], c["observed_rate"], marker="o", label=name)
        top = max(top, float(c[["mean_predicted", "observed_rate"]].max().max()))
    ax.plot([0, top], [0, top], color="grey", linestyle=":")
    ax.set(xlabel="mean predicted probability", ylabel="observed rate", title="Calibration (holdout)")
    ax.legend()
    return _save(fig, path)


def plot_lift(y: np.ndarray, p: np.ndarray, path: Path, name: str) -> Path:
    """Lift of each score decile over the base rate (decile 1 = highest scores)."""
    lift = lift_by_decile(y, p)
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.bar(lift["decile"], lift["lift"])
    ax.axhline(1.0, color="grey", linestyle=":")
    ax.set(xlabel="score decile (1 = highest)", ylabel="lift", title=f"Lift by decile ({name}, holdout)")
    return _save(fig, path)


def plot_forest(table: pd.DataFrame, path: Path) -> Path:
    """Hazard ratios with 95 % CI per covariate (log scale), from ``interpret.hazard_ratios``."""
    t = table.sort_values("hazard_ratio")
    fig, ax = plt.subplots(figsize=(7, max(3, 0.28 * len(t))))
    y = np.arange(len(t))
    ax.errorbar(
        t["hazard_ratio"],
        y,
        xerr=[t["hazard_ratio"] - t["hr_lower_95"], t["hr_upper_95"] - t["hazard_ratio"]],
        fmt="o",
        capsize=2,
    )
    ax.axvline(1.0, color="grey", linestyle=":")
    ax.set_xscale("log")
    ax.set_yticks(y, t["covariate"])
    ax.set(xlabel="hazard ratio (numeric: per SD of the transformed feature)", title="Cox hazard ratios, 95 % CI")
    return _save(fig, path)


def plot_survival_by_tier(
    duration: np.ndarray, event: np.ndarray, p: np.ndarray, cuts: tuple[float, ...], horizon_days: int, path: Path
) -> Path:
    """Kaplan-Meier share still without an application, holdout rows grouped by predicted tier."""
    tiers = assign_tiers(p, cuts)
    fig, ax = plt.subplots(figsize=(6, 4))
    for tier in TIERS:
        sel = tiers == tier
        if sel.sum() == 0:
            continue
        kmf = KaplanMeierFitter(label=f"tier {tier} (n={int(sel.sum())})")
        kmf.fit(duration[sel], event_observed=event[sel])
        kmf.plot_survival_function(ax=ax, ci_show=False)
    ax.axvline(horizon_days, color="grey", linestyle=":")
    ax.set(xlabel="days since scoring date", ylabel="share without application", title="Survival by tier (holdout)")
    ax.set_xlim(0, 3 * horizon_days)
    return _save(fig, path)
