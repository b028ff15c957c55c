"""The insight report's outreach plan: expected applications captured by the top-k leads of a weekly pool, and the
best weekly list size for a counselor capacity (``scoring.outreach`` finds the expected-net-value optimum)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from leadscore.monitoring.conversion import InsightInputError
from leadscore.scoring.outreach import ContactPlan, best_contact_list


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
