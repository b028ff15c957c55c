"""Tiers A-D by this week's rank, and the 1-99 lead score from the model's reference distribution."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

TIERS: tuple[str, ...] = ("A", "B", "C", "D")


def rank_order(p: np.ndarray, person_guid: np.ndarray) -> np.ndarray:
    """Indices that sort leads from the highest to the lowest probability, ties broken by ``person_guid`` ascending.

    Args:
        p: probabilities (float array).
        person_guid: GUID strings aligned with ``p``.
    Returns:
        An integer array of positions (a permutation of ``range(len(p))``).
    """
    # Arrow sorts strings natively; numpy's lexsort on Python string objects is ten times slower at 1M leads.
    table = pa.table({"p": pa.array(np.asarray(p, dtype="float64")), "g": pa.array(person_guid, type=pa.string())})
    order = pc.sort_indices(table, sort_keys=[("p", "descending"), ("g", "ascending")])
    return order.to_numpy(zero_copy_only=False).astype("int64")


def guid_order(person_guid: object) -> np.ndarray:
    """Indices that sort GUID strings ascending (stable)."""
    return pc.sort_indices(pa.array(person_guid, type=pa.string())).to_numpy(zero_copy_only=False).astype("int64")


def tier_counts(n: int, cuts: tuple[float, ...]) -> np.ndarray:
    """How many of ``n`` leads fall in each tier for cumulative top shares ``cuts`` (A, A+B, A+B+C).

    Boundaries are ``round(cut * n)``, so with the defaults (5 %, 20 %, 50 %) and 1,000 leads the tiers hold
    50, 150, 300 and 500 leads.
    """
    bounds = np.array([round(c * n) for c in cuts] + [n])
    return np.diff(np.concatenate([[0], bounds]))


def assign_tiers(p: np.ndarray, person_guid: np.ndarray, cuts: tuple[float, ...]) -> np.ndarray:
    """Tier letter per lead by this week's rank: top ``cuts[0]`` A, up to ``cuts[1]`` B, up to ``cuts[2]`` C, rest D.

    Args:
        p: probabilities.
        person_guid: GUIDs aligned with ``p`` (deterministic tie-break).
        cuts: three increasing cumulative shares in (0, 1) (``Settings.tier_cuts``).
    Returns:
        An object array of "A".."D" aligned with ``p``.
    Raises:
        ValueError: ``cuts`` is not three increasing shares in (0, 1).
    """
    if len(cuts) != 3 or list(cuts) != sorted(cuts) or not 0 < cuts[0] <= cuts[-1] < 1:
        raise ValueError(f"tier cuts must be three increasing shares in (0, 1), got {cuts}")
    n = len(p)
    order = rank_order(p, person_guid)
    ranked_tiers = np.repeat(np.array(TIERS, dtype=object), tier_counts(n, cuts))
    tiers = np.empty(n, dtype=object)
    tiers[order] = ranked_tiers
    return tiers


def lead_score_from_percentile(percentile: np.ndarray) -> np.ndarray:
    """The 1-99 lead score: ``1 + floor(percentile * 98)``, clipped to [1, 99].

    Args:
        percentile: the lead's percentile in [0, 1] against the model's reference score distribution.
    Returns:
        int16 array.
    """
    pct = np.asarray(percentile, dtype="float64")
    return np.clip(1 + np.floor(pct * 98.0), 1, 99).astype("int16")
