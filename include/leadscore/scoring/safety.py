"""Refuse to deliver an empty, truncated or implausibly changed score set."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from leadscore.scoring.errors import DeliverySafetyError
from leadscore.settings import Settings


@dataclass(frozen=True)
class SafetyReport:
    """What the safety checks saw.

    Attributes:
        rows: leads scored this week.
        common: leads scored both this week and the previous delivered week (0 without a previous week).
        tier_changed: of ``common``, how many changed tier.
        tier_change_share: ``tier_changed / common`` (0.0 when there is nothing to compare).
    """

    rows: int
    common: int
    tier_changed: int
    tier_change_share: float


def check_delivery_safety(
    scores: pd.DataFrame, previous_scores: pd.DataFrame | None, settings: Settings
) -> SafetyReport:
    """Check that a score set is safe to deliver.

    Args:
        scores: this week's scores (``person_guid``, ``lead_tier``).
        previous_scores: the last delivered week's scores, or ``None`` on the first delivery.
        settings: uses ``min_scored_leads`` and ``max_tier_change_share``.
    Returns:
        A :class:`SafetyReport`.
    Raises:
        DeliverySafetyError: fewer rows than ``min_scored_leads``, or more than ``max_tier_change_share`` of the leads
            present in both weeks changed tier. The message says what to check and how to override.
    """
    rows = len(scores)
    if rows < settings.min_scored_leads:
        raise DeliverySafetyError(
            f"only {rows} leads were scored, below the floor of {settings.min_scored_leads} "
            "(LEADSCORE_MIN_SCORED_LEADS); nothing was delivered. Check that this week's extract is complete and the "
            "lookback covers the recent leads; lower the floor only if the lead volume really dropped."
        )
    if previous_scores is None or len(previous_scores) == 0:
        return SafetyReport(rows=rows, common=0, tier_changed=0, tier_change_share=0.0)
    both = scores[["person_guid", "lead_tier"]].merge(
        previous_scores[["person_guid", "lead_tier"]], on="person_guid", suffixes=("", "_previous")
    )
    common = len(both)
    changed = int((both["lead_tier"].astype(str) != both["lead_tier_previous"].astype(str)).sum())
    share = changed / common if common else 0.0
    if share > settings.max_tier_change_share:
        raise DeliverySafetyError(
            f"{changed} of {common} leads scored in both weeks changed tier ({share:.1%}), above the limit of "
            f"{settings.max_tier_change_share:.0%} (LEADSCORE_MAX_TIER_CHANGE_SHARE); nothing was delivered. Check "
            "for a broken extract or a new champion with a different score scale; if the change is expected, "
            "re-run with a higher limit."
        )
    return SafetyReport(rows=rows, common=common, tier_changed=changed, tier_change_share=share)
