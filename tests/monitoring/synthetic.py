"""Small synthetic weeks for the monitoring tests: features, scores files with known outcomes, leads."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

from leadscore.data.tables import FEATURE_FLAGS, FEATURE_NUMERIC
from leadscore.monitoring.drift import reference_profile
from leadscore.settings import Settings

SOURCES = ("Inquiry", "Source", "Vendor Lead")
H = 14


def make_features(
    n: int, rng: np.random.Generator, shift: float = 0.0, sources: tuple[str, ...] = SOURCES
) -> pd.DataFrame:
    """Feature rows with every FEATURE_COLUMNS column; ``shift`` moves the e-mail counts up (drift)."""
    data: dict[str, object] = {}
    for i, name in enumerate(FEATURE_NUMERIC):
        lam = 2.0 + (i % 5) + (shift * 6 if name.startswith("email") else 0.0)
        data[name] = rng.poisson(lam, n).astype("float64")
    for name in FEATURE_FLAGS:
        data[name] = (rng.random(n) < 0.2).astype("int64")
    data["source"] = pd.array(rng.choice(sources, n), dtype="string")
    college = pd.array(rng.choice(["Arts", "Business", "Science"], n), dtype="string")
    college[rng.random(n) < 0.17] = pd.NA
    data["college"] = college
    return pd.DataFrame(data)


def true_probability(features: pd.DataFrame) -> np.ndarray:
    """The synthetic truth: more e-mail opens and pings raise the chance to apply."""
    z = -3.0 + 0.6 * (features["email_open"].to_numpy() - 3) + 0.5 * (features["pings"].to_numpy() - 4)
    return 1 / (1 + np.exp(-z))


def hazard_table() -> pd.DataFrame:
    """A small ``interpret.hazard_ratios``-shaped table."""
    return pd.DataFrame(
        {
            "covariate": ["email_open", "pings", "source=Vendor Lead", "opted_out"],
            "feature": ["email_open", "pings", "source", "opted_out"],
            "coef": [0.6, 0.5, -1.2, -0.7],
            "hazard_ratio": [1.82, 1.65, 0.30, 0.50],
            "hr_lower_95": [1.6, 1.5, 0.2, 0.4],
            "hr_upper_95": [2.0, 1.8, 0.45, 0.62],
            "p": [1e-6, 1e-5, 1e-4, 1e-3],
            "level": ["", "", "Vendor Lead", ""],
            "reference": ["", "", "Inquiry", ""],
            "low": [3.0, 4.0, np.nan, np.nan],
            "high": [6.0, 7.0, np.nan, np.nan],
            "hr_contrast": [3.31, 2.72, 0.30, 0.50],
        }
    )


def tiers(p: np.ndarray) -> np.ndarray:
    """A/B/C/D by cumulative top shares 5/20/50 %."""
    rank = pd.Series(-p).rank(method="first").to_numpy() / len(p)
    return np.select([rank <= 0.05, rank <= 0.20, rank <= 0.50], ["A", "B", "C"], "D")


def write_week(
    scores_dir: Path,
    scored_on: date,
    p: np.ndarray,
    guids: list[str],
    control: np.ndarray | None = None,
    horizon: int = H,
) -> Path:
    """Write ``<scores_dir>/<YYYYMMDD>/scores.parquet`` in the scoring files' layout."""
    folder = Path(scores_dir) / scored_on.strftime("%Y%m%d")
    folder.mkdir(parents=True, exist_ok=True)
    frame = pd.DataFrame(
        {
            "person_guid": pd.array(guids, dtype="string"),
            "lead_score": np.clip((p * 100).round(), 1, 99).astype("int64"),
            "lead_tier": pd.array(tiers(p), dtype="string"),
            f"p_apply_{horizon}d": p,
            "top_reason_1": pd.array(["e-mails opened"] * len(p), dtype="string"),
            "model_version": pd.array(["lead_propensity/3"] * len(p), dtype="string"),
            "scored_on": pd.array([scored_on.isoformat()] * len(p), dtype="string"),
            "control": np.zeros(len(p), dtype="int8") if control is None else control.astype("int8"),
        }
    )
    frame.to_parquet(folder / "scores.parquet", index=False)
    return folder


def outcomes(rng: np.random.Generator, scored_on: date, p: np.ndarray, horizon: int = H) -> pd.Series:
    """Application timestamps: with probability p inside (scored_on, scored_on + H], else NaT."""
    applied = rng.random(len(p)) < p
    t0 = pd.Timestamp(scored_on)
    days = rng.uniform(0.01, horizon, len(p))
    when = pd.Series(t0 + pd.to_timedelta(days, unit="D")).astype("datetime64[us]")
    return when.where(applied)


def build_weeks(
    settings: Settings,
    weeks: list[date],
    n: int = 1500,
    seed: int = 0,
    informative: bool = True,
    shift_last: float = 0.0,
    horizon: int = H,
) -> tuple[pd.DataFrame, dict, dict[date, pd.DataFrame]]:
    """Score files for each week, the leads table with their applications, the training reference and the features.

    Each week scores ``n`` fresh leads. With ``informative`` the scores are the true probabilities (AUC about 0.85);
    without, they are noise (AUC about 0.5). ``shift_last`` drifts the last week's e-mail features.
    Returns:
        (leads, reference profile, features per week).
    """
    rng = np.random.default_rng(seed)
    train = make_features(4000, rng)
    ref = reference_profile(train, true_probability(train), hazard_ratios=hazard_table())
    leads, feats = [], {}
    for i, week in enumerate(weeks):
        f = make_features(n, rng, shift=shift_last if i == len(weeks) - 1 else 0.0)
        truth = true_probability(f)
        p = truth if informative else rng.permutation(truth)
        guids = [f"{i:03d}-{j:06d}" for j in range(n)]
        write_week(settings.scores_dir, week, p, guids, horizon=horizon)
        leads.append(
            pd.DataFrame(
                {
                    "person_guid": pd.array(guids, dtype="string"),
                    "application_created": outcomes(rng, week, truth, horizon),
                }
            )
        )
        feats[week] = f
    return pd.concat(leads, ignore_index=True), ref, feats


def weekly_dates(start: date, count: int) -> list[date]:
    """``count`` weekly dates from ``start``."""
    return [start + timedelta(days=7 * i) for i in range(count)]


def weekly_report(home: Path, weeks: int = 2) -> Path:
    """Run the monitoring over ``weeks`` synthetic weeks (H = 7, so the last week has realized performance) and
    return the last week's report."""
    from leadscore.monitoring import monitor_week

    settings = Settings(home=home, horizon_days=7)
    days = weekly_dates(date(2025, 1, 5), weeks)
    leads, ref, feats = build_weeks(settings, days, n=800, horizon=7)
    result = None
    for d in days:
        result = monitor_week(settings, d, feats[d], ref, leads=leads)
    assert result is not None
    return result.report_path
