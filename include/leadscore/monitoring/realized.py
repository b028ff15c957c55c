"""Realized performance: how well did the scores of H, 2H and 3H days ago predict who actually applied?

A lead scored on day ``d`` counts as a positive when its application was created in ``(d, d + H]`` (midnight
timestamps, as the scoring uses). Only score dates whose horizon has fully passed (``d + H <= scored_on``) are judged.
The extracts are the source of truth for applications; leads whose application predates ``d`` (a late-arriving
record) and leads missing from the extracts are left out and counted.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from leadscore.model.evaluate import calibration_curve, metrics

SCORES_NAME = "scores.parquet"  # leadscore.scoring.files.SCORES_NAME; not imported to keep monitoring light
_P_COLUMN = re.compile(r"^p_apply_(\d+)d$")
LAGS = (1, 2, 3)


class RealizedInputError(ValueError):
    """The inputs of realized performance are unusable (no probability column, no leads table columns)."""


@dataclass(frozen=True)
class RealizedWeek:
    """Realized performance of one past score date.

    Attributes:
        lag: 1, 2 or 3 (scores from about H, 2H, 3H days before the monitoring date).
        scored_on: the past score date judged.
        horizon_days: H of its probability column.
        metrics: n, positives, base_rate, auc, log_loss, brier, calibration_slope/intercept, top_decile_*,
            tier_a_n, tier_a_conversion, tier_a_predicted, control_n, control_conversion, scored_conversion,
            control_lift, tier_a_control_conversion, tier_a_scored_conversion, excluded_missing, excluded_applied.
        calibration: observed vs predicted rate in 10 equal-count bins.
    """

    lag: int
    scored_on: date
    horizon_days: int
    metrics: dict[str, float]
    calibration: pd.DataFrame = field(compare=False)


def score_dates(scores_dir: Path) -> list[date]:
    """Score dates that have a ``scores.parquet`` under ``scores_dir`` (folders named ``YYYYMMDD``), ascending."""
    scores_dir = Path(scores_dir)
    if not scores_dir.is_dir():
        return []
    out = []
    for p in scores_dir.iterdir():
        if p.is_dir() and re.fullmatch(r"\d{8}", p.name) and (p / SCORES_NAME).is_file():
            out.append(date(int(p.name[:4]), int(p.name[4:6]), int(p.name[6:])))
    return sorted(out)


def mature_dates(
    available: list[date], scored_on: date, horizon_days: int, lags: tuple[int, ...] = LAGS
) -> list[tuple[int, date]]:
    """For each lag k, the latest score date in ``(scored_on - (k+1)H, scored_on - kH]``, when there is one.

    Each such date's horizon has fully passed by ``scored_on``; weekly scoring makes a new date mature each week.
    """
    h = timedelta(days=horizon_days)
    chosen: list[tuple[int, date]] = []
    for k in lags:
        hi, lo = scored_on - k * h, scored_on - (k + 1) * h
        window = [d for d in available if lo < d <= hi]
        if window:
            chosen.append((k, max(window)))
    return chosen


def probability_column(scores: pd.DataFrame) -> tuple[str, int]:
    """The ``p_apply_<H>d`` column of a scores frame and its H.

    Raises:
        RealizedInputError: none or several such columns.
    """
    found = [(c, int(m.group(1))) for c in scores.columns if (m := _P_COLUMN.match(str(c)))]
    if len(found) != 1:
        raise RealizedInputError(f"scores need exactly one p_apply_<H>d column, found {[c for c, _ in found]}")
    return found[0]


def label_outcomes(
    scores: pd.DataFrame, leads: pd.DataFrame, scored_on: date, horizon_days: int
) -> tuple[pd.DataFrame, dict[str, int]]:
    """Join past scores to the leads' applications and label each lead applied (1) or not (0) within H days.

    Args:
        scores: a date's ``scores.parquet`` (person_guid, p_apply_<H>d, lead_tier, optional control).
        leads: cleaned leads with person_guid and application_created.
        scored_on: the date the scores were made.
        horizon_days: H.
    Returns:
        (frame with person_guid, p, lead_tier, control, applied; counts of excluded leads
        ``{"excluded_missing", "excluded_applied"}``).
    Raises:
        RealizedInputError: a required column is missing.
    """
    for col in ("person_guid", "application_created"):
        if col not in leads.columns:
            raise RealizedInputError(f"the leads extract lacks {col!r}; cannot label realized outcomes")
    p_col, _ = probability_column(scores)
    t0 = pd.Timestamp(scored_on)
    t1 = t0 + pd.Timedelta(days=horizon_days)
    apps = leads[["person_guid", "application_created"]].drop_duplicates("person_guid", keep="last")
    apps = apps.astype({"person_guid": "string"})
    frame = pd.DataFrame(
        {
            "person_guid": scores["person_guid"].astype("string"),
            "p": scores[p_col].to_numpy(dtype=float),
            "lead_tier": scores["lead_tier"].astype("string") if "lead_tier" in scores else pd.NA,
            "control": scores["control"].to_numpy(dtype="int64") if "control" in scores else 0,
        }
    ).merge(apps, on="person_guid", how="left", indicator=True)
    known = (frame["_merge"] == "both").to_numpy()
    created = pd.to_datetime(frame["application_created"])
    before = (created <= t0).fillna(False).to_numpy(dtype=bool)
    keep = known & ~before
    applied = ((created > t0) & (created <= t1)).fillna(False).to_numpy(dtype=bool)
    out = frame.loc[keep, ["person_guid", "p", "lead_tier", "control"]].reset_index(drop=True)
    out["applied"] = applied[keep].astype("int64")
    return out, {"excluded_missing": int((~known).sum()), "excluded_applied": int((known & before).sum())}


def _rate(y: np.ndarray) -> float:
    return float(y.mean()) if len(y) else float("nan")


def realized_metrics(
    y: np.ndarray, p: np.ndarray, tier: np.ndarray | None = None, control: np.ndarray | None = None
) -> dict[str, float]:
    """Realized metrics of probabilities ``p`` against outcomes ``y`` (0/1).

    Discrimination and calibration use every lead (control leads are scored too, just not shown to counselors).
    Control vs scored conversion compares leads flagged control with the others; ``control_lift`` is
    scored_conversion / control_conversion (NaN without control leads or when the control group never converted).

    Returns:
        The ``model.evaluate.metrics`` keys plus tier-A and control keys (see :class:`RealizedWeek`); NaN where
        undefined.
    """
    y = np.asarray(y, dtype=float)
    p = np.asarray(p, dtype=float)
    out = metrics(y, p)
    tier = np.full(len(y), "", dtype=object) if tier is None else np.asarray(tier, dtype=object)
    control = np.zeros(len(y), dtype=bool) if control is None else np.asarray(control).astype(bool)
    a = tier == "A"
    out["tier_a_n"] = float(a.sum())
    out["tier_a_conversion"] = _rate(y[a])
    out["tier_a_predicted"] = _rate(p[a])
    out["control_n"] = float(control.sum())
    out["control_conversion"] = _rate(y[control]) if control.any() else float("nan")
    out["scored_conversion"] = _rate(y[~control])
    cc = out["control_conversion"]
    out["control_lift"] = out["scored_conversion"] / cc if control.any() and cc > 0 else float("nan")
    out["tier_a_control_conversion"] = _rate(y[a & control]) if (a & control).any() else float("nan")
    out["tier_a_scored_conversion"] = _rate(y[a & ~control])
    return out


def realized_performance(
    scores_dir: Path, leads: pd.DataFrame, scored_on: date, horizon_days: int, lags: tuple[int, ...] = LAGS
) -> list[RealizedWeek]:
    """Realized performance of the score dates H, 2H and 3H days before ``scored_on`` (those that exist).

    Args:
        scores_dir: the scores root (``Settings.scores_dir``).
        leads: cleaned leads from the extracts (person_guid, application_created).
        scored_on: the monitoring date.
        horizon_days: H, to pick the mature dates; each file's own H labels its outcomes.
    Returns:
        One :class:`RealizedWeek` per judged date, lag ascending; empty when no date is mature yet.
    Raises:
        RealizedInputError: a scores file or the leads lack required columns.
    """
    out = []
    for lag, day in mature_dates(score_dates(scores_dir), scored_on, horizon_days, lags):
        scores = pd.read_parquet(Path(scores_dir) / day.strftime("%Y%m%d") / SCORES_NAME)
        _, h = probability_column(scores)
        if day + timedelta(days=h) > scored_on:
            continue  # a longer horizon in that file: its outcomes are not all known yet
        labelled, excluded = label_outcomes(scores, leads, day, h)
        y = labelled["applied"].to_numpy()
        p = labelled["p"].to_numpy()
        m = realized_metrics(
            y, p, labelled["lead_tier"].to_numpy(dtype=object, na_value=""), labelled["control"].to_numpy()
        )
        m.update({k: float(v) for k, v in excluded.items()})
        curve = (
            calibration_curve(y.astype(float), p)
            if len(y) >= 10
            else pd.DataFrame(columns=["bin", "n", "mean_predicted", "observed_rate"])
        )
        out.append(RealizedWeek(lag, day, h, m, curve))
    return out


def as_flat(weeks: list[RealizedWeek]) -> dict[str, Any]:
    """History fields of the realized weeks: lag 1 under plain names (``realized_auc``...), lags 2/3 suffixed."""
    flat: dict[str, Any] = {}
    for w in weeks:
        suffix = "" if w.lag == 1 else f"_{w.lag}h"
        flat[f"realized_scored_on{suffix}"] = w.scored_on.isoformat()
        flat[f"realized_n{suffix}"] = w.metrics["n"]
        flat[f"realized_auc{suffix}"] = w.metrics["auc"]
        if w.lag == 1:
            for key in (
                "positives",
                "base_rate",
                "log_loss",
                "brier",
                "calibration_slope",
                "calibration_intercept",
                "tier_a_conversion",
                "tier_a_predicted",
                "control_conversion",
                "scored_conversion",
                "control_lift",
            ):
                flat[f"realized_{key}"] = w.metrics[key]
    return flat
