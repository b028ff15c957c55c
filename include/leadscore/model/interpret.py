"""Interpretation: hazard ratios with confidence intervals, plain-language sentences, per-lead top reasons."""

from __future__ import annotations

import numpy as np
import pandas as pd

from leadscore.data.tables import FEATURE_CATEGORICAL, FEATURE_FLAGS, FEATURE_NUMERIC
from leadscore.model.cox import CoxModel
from leadscore.model.preprocess import LINEAR_SCALE, MISSING_LEVEL, OTHER_LEVEL

# Short labels a counselor can read in Slate (used for the reasons and the sentences).
FEATURE_LABELS: dict[str, str] = {
    "days_as_lead": "days as a lead",
    "email_sent": "e-mails sent",
    "email_open": "e-mails opened",
    "email_click": "e-mail clicks",
    "email_open_rate": "e-mail open rate",
    "email_click_rate": "e-mail click rate",
    "email_sent_30d": "e-mails sent in the last 30 days",
    "email_open_30d": "e-mails opened in the last 30 days",
    "email_click_30d": "e-mail clicks in the last 30 days",
    "days_since_last_engagement": "days since last engagement",
    "pings": "web visits",
    "pings_30d": "web visits in the last 30 days",
    "distinct_urls": "distinct pages visited",
    "ping_apply": "visits to apply pages",
    "ping_visit": "visits to campus-visit pages",
    "ping_aid": "visits to financial-aid pages",
    "ping_program": "visits to program pages",
    "activity_appointment": "appointments",
    "activity_chat": "chats",
    "activity_email": "e-mail conversations",
    "activity_phone": "phone calls",
    "activity_walkin": "walk-ins",
    "events_registered": "event registrations",
    "events_attended": "events attended",
    "college_missing": "no college of interest",
    "no_email_sent": "no e-mail sent yet",
    "never_engaged": "no engagement yet",
    "opted_out": "opted out of e-mail",
    "source": "lead source",
    "college": "college of interest",
}
STRONG_HR = 1.5
ALPHA = 0.05


def hazard_ratios(model: CoxModel, training_features: pd.DataFrame) -> pd.DataFrame:
    """One row per design covariate: feature, level, coef, hazard ratio with 95 % CI, p, and a readable contrast.

    For numeric features the ratio ``hr_contrast`` compares a lead at the training 90th percentile with one at the
    median (``low``/``high`` in original units); for flags and categorical levels it is the plain hazard ratio against
    "flag off" / the reference level. Confidence intervals are lifelines' (penalized; landmark rows of one lead are
    treated as independent, so they are somewhat too narrow).
    """
    s = model.summary
    pre = model.pre
    rows = []
    for name, group in zip(pre.design_columns, pre.groups, strict=True):
        r = s.loc[name]
        row = {
            "covariate": name,
            "feature": group,
            "coef": float(r["coef"]),
            "hazard_ratio": float(r["exp(coef)"]),
            "hr_lower_95": float(r["exp(coef) lower 95%"]),
            "hr_upper_95": float(r["exp(coef) upper 95%"]),
            "p": float(r["p"]),
            "level": "",
            "reference": "",
            "low": np.nan,
            "high": np.nan,
            "hr_contrast": float(r["exp(coef)"]),
        }
        if group in FEATURE_NUMERIC:
            values = training_features[group].to_numpy(dtype=float)
            low, high = np.quantile(values, 0.5), np.quantile(values, 0.9)
            if high == low:
                high = np.quantile(values, 0.975)
            i = pre.numeric.index(group)
            tf = (lambda v: v) if group in LINEAR_SCALE else (lambda v: np.log1p(max(v, 0.0)))
            dz = (tf(high) - tf(low)) / pre.scales[i]
            row.update(low=float(low), high=float(high), hr_contrast=float(np.exp(row["coef"] * dz)))
        elif group in FEATURE_CATEGORICAL:
            row.update(level=name.split("=", 1)[1], reference=pre.levels[group][0])
        rows.append(row)
    return pd.DataFrame(rows)


def _level_phrase(feature: str, level: str) -> str:
    if level == OTHER_LEVEL:
        return "interested in a rarer college" if feature == "college" else "from rarer sources"
    if feature == "college":
        return "with no college of interest" if level == MISSING_LEVEL else f"interested in {level}"
    return "with no recorded source" if level == MISSING_LEVEL else f"from {level}"


def effect_sentences(table: pd.DataFrame, strong: float = STRONG_HR, alpha: float = ALPHA) -> list[str]:
    """One plain-language sentence per strong, significant effect (contrast ratio >= ``strong`` or <= 1/``strong``),
    strongest first. ``table`` is ``hazard_ratios``' output."""
    keep = table[(table["p"] < alpha) & (np.abs(np.log(table["hr_contrast"])) >= np.log(strong))]
    keep = keep.reindex(keep["hr_contrast"].map(lambda v: -abs(np.log(v))).sort_values().index)
    out = []
    for _, r in keep.iterrows():
        hr = r["hr_contrast"]
        f = r["feature"]
        if f in FEATURE_CATEGORICAL:
            out.append(
                f"Leads {_level_phrase(f, r['level'])} apply at {hr:.1f}× the rate of leads "
                f"{_level_phrase(f, r['reference'])}, other things equal."
            )
        elif f in FEATURE_FLAGS:
            out.append(
                f"Leads with {FEATURE_LABELS[f]} apply at {hr:.1f}× the rate of other leads, other things equal."
            )
        else:
            out.append(
                f"Leads with {r['high']:g} {FEATURE_LABELS[f]} (90th percentile) apply at {hr:.1f}× the rate "
                f"of leads with {r['low']:g} (median), other things equal."
            )
    return out


def top_reasons(contributions: pd.DataFrame, k: int = 3, labels: dict[str, str] | None = None) -> pd.DataFrame:
    """The ``k`` features that raise each lead's score most (positive contributions only), as readable labels.

    Returns:
        A frame with columns ``top_reason_1..k`` (empty string when fewer than k features raise the score).
    """
    labels = FEATURE_LABELS if labels is None else labels
    values = contributions.to_numpy(dtype=float)
    names = np.array([labels.get(c, c) for c in contributions.columns], dtype=object)
    order = np.argsort(-values, axis=1, kind="stable")[:, :k]
    picked = np.take_along_axis(values, order, axis=1)
    out = np.where(picked > 1e-9, names[order], "")
    return pd.DataFrame(out, columns=[f"top_reason_{i + 1}" for i in range(k)], index=contributions.index)
