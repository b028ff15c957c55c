"""The week's contact list: how many leads to contact, and from which score down, to maximise expected net value.

Contacting a lead with probability ``p`` of starting an application is worth ``p * application_value -
contact_cost`` in expectation, so the best list within a capacity of ``c`` contacts is the top ``k`` leads by ``p``
with ``k`` the largest number up to ``c`` whose last lead still has ``p > contact_cost / application_value`` (the
break-even probability): every further lead would lower the expected net value ``sum(p * value - cost)``. This is
the rule seed 004's system used for its cut-off (the threshold maximising ROI). ``p`` is the model's probability
as delivered; it measures how likely a lead is to apply, not how much a contact changes that, so the value is the
one the team puts on reaching a likely applicant.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from leadscore.scoring.tiers import rank_order


@dataclass(frozen=True)
class ContactPlan:
    """The best contact list of a week.

    Attributes:
        leads: leads that could be contacted (scored, not control).
        capacity: contacts available (``Settings.counselor_capacity``).
        list_size: leads on the best list (0 when no lead is above break-even).
        cutoff: the lowest probability on the list (None when the list is empty).
        break_even: ``contact_cost / application_value``.
        expected_applications: sum of ``p`` over the list.
        expected_net_value: ``expected_applications * application_value - list_size * contact_cost``.
        limited_by: "capacity" (more leads were above break-even), "break-even", or "leads" (every lead is on it).
    """

    leads: int
    capacity: int
    list_size: int
    cutoff: float | None
    break_even: float
    expected_applications: float
    expected_net_value: float
    limited_by: str

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


def best_contact_list(
    p: np.ndarray, capacity: int, application_value: float, contact_cost: float, weight: float = 1.0
) -> ContactPlan:
    """The list size and score cut-off that maximise expected net value within ``capacity`` (see the module doc).

    Args:
        p: probabilities of the leads that may be contacted (any order).
        capacity: contacts available (>= 0).
        application_value: value of one started application (> 0).
        contact_cost: cost of one contact (>= 0).
        weight: how many leads each entry of ``p`` stands for (a sample of a larger pool); counts and values are in
            pool units.
    Returns:
        The :class:`ContactPlan`.
    Raises:
        ValueError: a probability outside [0, 1] or NaN, a negative capacity or cost, a value that is not positive.
    """
    p = np.sort(np.asarray(p, dtype="float64").reshape(-1))[::-1]
    if not (np.isfinite(p).all() and ((p >= 0) & (p <= 1)).all()):
        raise ValueError("contact list: probabilities must be in [0, 1] with no NaN")
    if capacity < 0 or contact_cost < 0 or not application_value > 0 or not weight > 0:
        raise ValueError(
            f"contact list needs capacity >= 0, contact_cost >= 0, application_value > 0 and weight > 0 (got "
            f"{capacity}, {contact_cost}, {application_value}, {weight})"
        )
    break_even = contact_cost / application_value
    worth = int((p > break_even).sum())  # p is sorted: the leads worth a contact come first
    leads = round(p.size * weight)
    by_capacity = min(p.size, int(capacity / weight))
    n = min(worth, by_capacity)
    limited = "capacity" if worth > by_capacity else "leads" if n == p.size else "break-even"
    size = min(capacity, round(n * weight))
    applications = float(p[:n].sum() * weight)
    return ContactPlan(
        leads=leads,
        capacity=capacity,
        list_size=size,
        cutoff=float(p[n - 1]) if n else None,
        break_even=break_even,
        expected_applications=applications,
        expected_net_value=applications * application_value - size * contact_cost,
        limited_by=limited,
    )


def contact_flags(p: np.ndarray, person_guid: np.ndarray, eligible: np.ndarray, plan: ContactPlan) -> np.ndarray:
    """0/1 per lead: 1 for the ``plan.list_size`` eligible leads of highest ``p`` (ties by GUID, as the tiers).

    Args:
        p: probabilities of every scored lead.
        person_guid: GUIDs aligned with ``p``.
        eligible: bool mask of the leads that may be contacted (not control).
        plan: from :func:`best_contact_list` over ``p[eligible]``.
    Returns:
        int8 array aligned with ``p``.
    """
    p = np.asarray(p, dtype="float64")
    eligible = np.asarray(eligible, dtype=bool)
    out = np.zeros(len(p), dtype="int8")
    order = rank_order(np.where(eligible, p, -1.0), person_guid)  # ineligible leads rank last
    out[order[: plan.list_size]] = 1
    return out
