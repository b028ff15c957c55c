"""The sandbox's true application hazard, its calibration, and the true probability (the ceiling for every model).

Each lead has a hazard of starting an application at lead age ``s`` (days since its first origin)::

    h(s) = exp(eta) * h0(s),   h0(s) = a1 * exp(-s / tau1) + a2 * exp(-s / tau2)

where ``eta`` is a static per-lead log multiplier (source, college, latent interest ``z``) and ``h0`` falls with age:
a fast component (days) and a slow one (months). The cumulative hazard is closed-form::

    Lambda(s) = exp(eta) * (a1 * tau1 * (1 - exp(-s / tau1)) + a2 * tau2 * (1 - exp(-s / tau2)))

so ``P(apply in (t, t + H] | not applied by t) = 1 - exp(-(Lambda(t + H) - Lambda(t)))`` is exact. Lifetime cumulative
hazard is finite, so most leads never apply.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from datetime import datetime

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike

DAY_US = 86_400 * 1_000_000

# Columns of truth.parquet that the hazard needs (see hazard_columns).
HAZARD_COLUMNS: tuple[str, ...] = ("created", "eta", "a1", "tau1", "a2", "tau2", "true_app_time")


def cumulative_baseline(
    s: np.ndarray, a1: np.ndarray, tau1: np.ndarray, a2: np.ndarray, tau2: np.ndarray
) -> np.ndarray:
    """Baseline cumulative hazard Lambda0(s) for lead ages ``s`` in days (negative ages count as 0).

    Args:
        s: lead ages in days.
        a1, tau1, a2, tau2: baseline parameters (broadcastable to ``s``).
    Returns:
        Lambda0(s) as float64.
    """
    s = np.maximum(np.asarray(s, dtype=np.float64), 0.0)
    return a1 * tau1 * -np.expm1(-s / tau1) + a2 * tau2 * -np.expm1(-s / tau2)


def sample_application_age(
    rng: np.random.Generator,
    eta: np.ndarray,
    a1: np.ndarray,
    tau1: np.ndarray,
    a2: np.ndarray,
    tau2: np.ndarray,
) -> np.ndarray:
    """Draw each lead's age (days) at application start from its hazard; ``inf`` for leads that never apply.

    Inverts Lambda(T) = E with E ~ Exp(1) by bisection (Lambda0 has no closed-form inverse), vectorized.

    Args:
        rng: the seeded generator.
        eta: per-lead log hazard multiplier.
        a1, tau1, a2, tau2: per-lead baseline parameters.
    Returns:
        float64 ages in days, ``inf`` where the lifetime cumulative hazard stays below the drawn E.
    """
    target = rng.exponential(1.0, size=eta.shape[0]) * np.exp(-eta)  # Lambda0(T) must reach this
    total = a1 * tau1 + a2 * tau2
    applies = target < total
    out = np.full(eta.shape[0], np.inf)
    idx = np.flatnonzero(applies)
    if idx.size == 0:
        return out
    t = target[idx]
    p1, q1, p2, q2 = a1[idx], tau1[idx], a2[idx], tau2[idx]
    lo = np.zeros(idx.size)
    hi = np.ones(idx.size)
    # grow the upper bracket until Lambda0(hi) >= target (at most ~60 doublings since target < total)
    for _ in range(80):
        short = cumulative_baseline(hi, p1, q1, p2, q2) < t
        if not short.any():
            break
        hi = np.where(short, hi * 2.0, hi)
    for _ in range(48):  # 2**-48 of a bracket of at most ~1e6 days: well below one second
        mid = 0.5 * (lo + hi)
        below = cumulative_baseline(mid, p1, q1, p2, q2) < t
        lo = np.where(below, mid, lo)
        hi = np.where(below, hi, mid)
    out[idx] = hi
    return out


@functools.cache
def _gauss_hermite() -> tuple[np.ndarray, np.ndarray]:
    """Nodes and normalized weights integrating over a standard normal."""
    nodes, weights = np.polynomial.hermite_e.hermegauss(64)
    return nodes, weights / weights.sum()


def conversion_within(
    beta: np.ndarray | float,
    beta_z: float,
    horizon_days: float,
    a1: float,
    tau1: float,
    a2: float,
    tau2: float,
    offsets: np.ndarray,
    offset_weights: np.ndarray,
) -> np.ndarray:
    """Expected share of leads applying within ``horizon_days`` of origin, integrated over z ~ N(0, 1).

    Args:
        beta: candidate source intercepts (array or scalar).
        beta_z: coefficient of the latent interest z.
        horizon_days: window after origin.
        a1, tau1, a2, tau2: baseline parameters of this source.
        offsets: other additive log-hazard terms (e.g. college effects) and their weights (summing to 1).
    Returns:
        Expected conversion share per candidate beta.
    """
    nodes, weights = _gauss_hermite()
    lam0 = float(cumulative_baseline(np.array([horizon_days]), a1, tau1, a2, tau2)[0])
    beta = np.atleast_1d(np.asarray(beta, dtype=np.float64))
    eta = beta[:, None, None] + offsets[None, :, None] + beta_z * nodes[None, None, :]
    p = -np.expm1(-np.exp(eta) * lam0)
    return np.einsum("bon,o,n->b", p, offset_weights, weights)


def calibrate_intercept(
    target: float,
    beta_z: float,
    horizon_days: float,
    baseline: Mapping[str, float],
    offsets: np.ndarray,
    offset_weights: np.ndarray,
) -> float:
    """Source intercept that makes the expected conversion within ``horizon_days`` equal ``target``.

    Args:
        target: wanted conversion share in (0, 1).
        beta_z, horizon_days, offsets, offset_weights: as in :func:`conversion_within`.
        baseline: mapping with a1, tau1, a2, tau2.
    Returns:
        The intercept (bisection to 1e-10).
    Raises:
        ValueError: target outside (0, 1).
    """
    if not 0.0 < target < 1.0:
        raise ValueError(f"conversion target must be in (0, 1), got {target}")
    lo, hi = -30.0, 10.0
    for _ in range(80):
        mid = 0.5 * (lo + hi)
        share = conversion_within(mid, beta_z, horizon_days, offsets=offsets, offset_weights=offset_weights, **baseline)
        if share[0] < target:
            lo = mid
        else:
            hi = mid
    return 0.5 * (lo + hi)


def _as_us(values: ArrayLike | datetime | pd.Timestamp, n: int) -> np.ndarray:
    """Timestamps (scalar or array-like, tz-naive UTC or tz-aware) as int64 microseconds, broadcast to ``n``."""
    if isinstance(values, (datetime, pd.Timestamp, str, np.datetime64)):
        ts = pd.Timestamp(values)
        if ts.tzinfo is not None:
            ts = ts.tz_convert("UTC").tz_localize(None)
        return np.full(n, np.datetime64(ts.to_datetime64(), "us").astype(np.int64), dtype=np.int64)
    idx = pd.DatetimeIndex(pd.to_datetime(np.asarray(values)))
    if idx.tz is not None:
        idx = idx.tz_convert("UTC").tz_localize(None)
    arr = idx.as_unit("us").asi8
    if arr.shape[0] != n:
        raise ValueError(f"as_of has {arr.shape[0]} values but person_guid has {n}; pass one date or one per lead")
    if idx.hasnans:
        raise ValueError(f"as_of holds {int(idx.isna().sum())} missing dates")
    return arr


def true_probability(
    truth: pd.DataFrame,
    person_guid: ArrayLike,
    as_of: ArrayLike | pd.Timestamp | datetime,
    horizon_days: int,
) -> np.ndarray:
    """True probability that each lead starts an application in (as_of, as_of + H], given it has not by as_of.

    Computed from the lead's true hazard (static quantities including the latent interest the model never sees),
    so it is the ceiling that any model is measured against.

    Args:
        truth: the sandbox's truth table (needs person_guid and HAZARD_COLUMNS).
        person_guid: GUIDs of the leads to evaluate (case-insensitive).
        as_of: one date for all, or one per GUID (tz-naive UTC or tz-aware).
        horizon_days: H, positive.
    Returns:
        float64 array aligned with ``person_guid``: 0 for leads not yet originated at as_of or already applied.
    Raises:
        KeyError: some GUIDs are not in truth (count and examples given).
        ValueError: bad horizon, missing truth columns or as_of of the wrong length.
    """
    if horizon_days <= 0:
        raise ValueError(f"horizon_days must be positive, got {horizon_days}")
    missing = [c for c in ("person_guid", *HAZARD_COLUMNS) if c not in truth.columns]
    if missing:
        raise ValueError(f"truth table lacks columns {missing}; pass the truth frame from generate()/read_sandbox()")
    guids = pd.Index(pd.Series(np.asarray(person_guid, dtype=object), dtype="str").str.lower())
    pos = pd.Index(truth["person_guid"]).get_indexer(guids)
    if (pos < 0).any():
        bad = guids[pos < 0]
        raise KeyError(f"{len(bad)} person_guid values are not in truth, e.g. {list(bad[:3])}")
    as_of_us = _as_us(as_of, len(guids))
    created = truth["created"].to_numpy("datetime64[us]").view(np.int64)[pos]
    app = truth["true_app_time"].to_numpy("datetime64[us]")[pos]
    applied_before = ~np.isnat(app) & (app.view(np.int64) <= as_of_us)
    s = (as_of_us - created) / DAY_US
    params = [truth[c].to_numpy(np.float64)[pos] for c in ("a1", "tau1", "a2", "tau2")]
    eta = truth["eta"].to_numpy(np.float64)[pos]
    d_lambda = cumulative_baseline(s + horizon_days, *params) - cumulative_baseline(s, *params)
    p = -np.expm1(-np.exp(eta) * d_lambda)
    p[(s < 0) | applied_before] = 0.0
    return p
