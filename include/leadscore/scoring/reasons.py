"""Per-lead top reasons: the features that raise a lead's hazard the most, phrased for a counselor.

The model gives, per lead and per feature, a contribution to the log hazard (positive raises it). A reason is a
feature with a positive contribution whose value makes a sensible sentence ("Opened 8 emails in the last 30 days",
"Source: Inquiry Form"); a count of zero, a never-engaged lead's recency or a missingness flag is never a reason even
when the model credits it, because "Visited the apply page 0 times" explains nothing to a counselor.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

N_REASONS = 3


def _num(v: float) -> str:
    return str(int(v)) if float(v).is_integer() else f"{v:.1f}"


def _counted(one: str, many: str) -> Callable[[float], str]:
    """A phrase for a count: ``one`` when it is 1, else ``many`` with ``{n}`` replaced."""
    return lambda v: one if v == 1 else many.format(n=_num(v))


def _days_as_lead(v: float) -> str:
    if v <= 30:
        return f"New lead ({_num(v)} day{'' if v == 1 else 's'})"
    return f"Lead for {_num(v)} days"


def _recency(v: float) -> str:
    if v < 1:
        return "Engaged today"
    if v < 2:
        return "Engaged yesterday"
    return f"Last engaged {_num(v)} days ago"


def _rate(what: str) -> Callable[[float], str]:
    return lambda v: f"{what} {round(v * 100):d}% of emails"


@dataclass(frozen=True)
class ReasonSpec:
    """How a feature becomes a reason: a phrase per value and whether a value can be a reason at all."""

    phrase: Callable[[object], str]
    kind: str = "count"  # count: value > 0; always; category: value present; recency: lead has engaged


REASON_SPECS: dict[str, ReasonSpec] = {
    "days_as_lead": ReasonSpec(_days_as_lead, "always"),
    "email_sent": ReasonSpec(_counted("Received 1 email", "Received {n} emails")),
    "email_open": ReasonSpec(_counted("Opened 1 email", "Opened {n} emails")),
    "email_click": ReasonSpec(_counted("Clicked a link in 1 email", "Clicked links in {n} emails")),
    "email_open_rate": ReasonSpec(_rate("Opens")),
    "email_click_rate": ReasonSpec(_rate("Clicks links in")),
    "email_sent_30d": ReasonSpec(
        _counted("Received 1 email in the last 30 days", "Received {n} emails in the last 30 days")
    ),
    "email_open_30d": ReasonSpec(
        _counted("Opened 1 email in the last 30 days", "Opened {n} emails in the last 30 days")
    ),
    "email_click_30d": ReasonSpec(
        _counted("Clicked a link in 1 email in the last 30 days", "Clicked links in {n} emails in the last 30 days")
    ),
    "days_since_last_engagement": ReasonSpec(_recency, "recency"),
    "pings": ReasonSpec(_counted("Visited 1 web page", "Visited {n} web pages")),
    "pings_30d": ReasonSpec(
        _counted("Visited 1 web page in the last 30 days", "Visited {n} web pages in the last 30 days")
    ),
    "distinct_urls": ReasonSpec(_counted("Viewed 1 distinct web page", "Viewed {n} different web pages")),
    "ping_apply": ReasonSpec(_counted("Visited the apply page", "Visited the apply page {n} times")),
    "ping_visit": ReasonSpec(_counted("Viewed the campus visit page", "Viewed campus visit pages {n} times")),
    "ping_aid": ReasonSpec(_counted("Viewed the financial aid page", "Viewed financial aid pages {n} times")),
    "ping_program": ReasonSpec(_counted("Viewed a program page", "Viewed program pages {n} times")),
    "activity_appointment": ReasonSpec(_counted("Had an appointment", "Had {n} appointments")),
    "activity_chat": ReasonSpec(_counted("Chatted with the office", "Chatted with the office {n} times")),
    "activity_email": ReasonSpec(_counted("Emailed the office", "Emailed the office {n} times")),
    "activity_phone": ReasonSpec(_counted("Had a phone call", "Had {n} phone calls")),
    "activity_walkin": ReasonSpec(_counted("Walked in to the office", "Walked in {n} times")),
    "events_registered": ReasonSpec(_counted("Registered for 1 event", "Registered for {n} events")),
    "events_attended": ReasonSpec(_counted("Attended 1 event", "Attended {n} events")),
    "source": ReasonSpec(lambda v: f"Source: {v}", "category"),
    "college": ReasonSpec(lambda v: f"Interested in {v}", "category"),
}
# Flags explain nothing on their own ("no email sent", "opted out" are never reasons to call).
NEVER_REASONS: frozenset[str] = frozenset({"college_missing", "no_email_sent", "never_engaged", "opted_out"})


def _generic(name: str) -> Callable[[object], str]:
    label = name.replace("_", " ").capitalize()
    return lambda v: f"{label}: {_num(v) if isinstance(v, (int, float, np.number)) else v}"


def _eligible(name: str, spec: ReasonSpec, features: pd.DataFrame) -> np.ndarray:
    values = features[name]
    if spec.kind == "category":
        return values.notna().to_numpy()
    numeric = values.to_numpy(dtype="float64", na_value=np.nan)
    if spec.kind == "always":
        return np.isfinite(numeric)
    if spec.kind == "recency":
        engaged = np.isfinite(numeric)
        if "never_engaged" in features.columns:
            engaged &= features["never_engaged"].to_numpy(dtype="float64", na_value=1.0) == 0
        return engaged
    return np.isfinite(numeric) & (numeric > 0)


def _phrases(values: np.ndarray, phrase: Callable[[object], str]) -> np.ndarray:
    """Phrase each value, calling ``phrase`` once per distinct value (1M leads have few distinct counts)."""
    codes, uniques = pd.factorize(values, sort=False)
    texts = np.array([phrase(u) for u in uniques], dtype=object)
    return texts[codes]


def top_reasons(contributions: pd.DataFrame, features: pd.DataFrame, n: int = N_REASONS) -> list[np.ndarray]:
    """The ``n`` top reasons per lead, strongest first; ``""`` where a lead has fewer than ``n`` reasons.

    Args:
        contributions: per lead (rows aligned by position with ``features``) and per feature (columns named as in
            ``tables.FEATURE_COLUMNS``), the contribution to the log hazard; positive raises it.
        features: the scored feature rows (the lead's own values make the phrase).
    Returns:
        A list of ``n`` object arrays of phrases, each aligned with ``features``.
    Raises:
        ValueError: the frames differ in length, or a contribution column has no feature column to phrase it.
    """
    if len(contributions) != len(features):
        raise ValueError(
            f"contributions have {len(contributions)} rows but features have {len(features)}; they must align"
        )
    rows = len(features)
    names = [c for c in contributions.columns if c not in NEVER_REASONS]
    lacking = [c for c in names if c not in features.columns]
    if lacking:
        raise ValueError(f"contribution columns {lacking} have no feature column to phrase a reason from")
    out = [np.full(rows, "", dtype=object) for _ in range(n)]
    if rows == 0 or not names:
        return out
    specs = {c: REASON_SPECS.get(c, ReasonSpec(_generic(c), "always")) for c in names}
    strength = contributions[names].to_numpy(dtype="float64", na_value=np.nan, copy=True)
    for j, name in enumerate(names):
        strength[:, j] = np.where(_eligible(name, specs[name], features), strength[:, j], np.nan)
    strength = np.where(strength > 0, strength, -np.inf)  # NaN compares False: not a reason
    # Stable sort of the negated strengths: equal contributions keep the column order, so reasons are reproducible.
    top = np.argsort(-strength, axis=1, kind="stable")[:, :n]
    columns = {
        name: features[name].to_numpy(dtype=object if specs[name].kind == "category" else "float64", na_value=np.nan)
        for name in names
    }
    for slot in range(min(n, len(names))):
        cols = top[:, slot]
        valid = np.take_along_axis(strength, top[:, slot : slot + 1], axis=1)[:, 0] > -np.inf
        rows = np.flatnonzero(valid)
        # Group the rows by the feature in this slot: one sort instead of one full-length mask per feature.
        by_feature = rows[np.argsort(cols[rows], kind="stable")]
        bounds = np.concatenate([[0], np.cumsum(np.bincount(cols[rows], minlength=len(names)))])
        for j, name in enumerate(names):
            hit = by_feature[bounds[j] : bounds[j + 1]]
            if hit.size:
                out[slot][hit] = _phrases(columns[name][hit], specs[name].phrase)
    return out
