"""What training needs of the training set, and the minimum-data check run before anything is fitted."""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np
import pandas as pd

from leadscore.settings import Settings

DAYS_PER_MONTH = 365.25 / 12
WHAT_TO_DO = (
    "Train again once more history has accumulated, widen LEADSCORE_TRAINING_WINDOW_DAYS if Slate holds older leads, "
    "or lower the minimums (LEADSCORE_MIN_TRAINING_LEADS, LEADSCORE_MIN_TRAINING_APPLICATIONS, "
    "LEADSCORE_MIN_HISTORY_MONTHS) knowing the scores will be noisier; Salesforce Einstein asks for 1,000 leads and "
    "120 conversions before it scores."
)


class InsufficientDataError(ValueError):
    """The training data holds fewer leads, applications or months of history than a model needs."""


class TrainingSetLike(Protocol):
    """What training needs of ``model.training_set.TrainingSet``."""

    rows: pd.DataFrame
    train_mask: np.ndarray
    holdout_mask: np.ndarray
    as_of: Any
    split_time: Any
    horizon_days: int
    info: dict


def check_training_data(ts: TrainingSetLike, settings: Settings) -> dict[str, Any]:
    """Check the landmark rows hold the minimum a model needs, before anything is fitted.

    Counts distinct leads, leads with an application observed by ``as_of`` and months from the earliest lead origin
    to ``as_of``, against ``settings.min_training_leads``, ``min_training_applications`` and ``min_history_months``;
    the labelled holdout must also hold both outcomes (else no candidate can be judged).
    Returns:
        The counts found (logged to MLflow and the report).
    Raises:
        InsufficientDataError: one message naming every count found against the one needed, and what to do.
    """
    rows = ts.rows
    event = rows["full_event"] if "full_event" in rows.columns else rows["event"]
    per_lead = event.astype(bool).groupby(rows["person_guid"]).any()
    as_of = pd.Timestamp(ts.as_of)
    months = (as_of - pd.Timestamp(rows["origin_date"].min())) / pd.Timedelta(days=DAYS_PER_MONTH) if len(rows) else 0
    hold = rows.loc[np.asarray(ts.holdout_mask, dtype=bool), "label"].dropna()
    found = {
        "leads": len(per_lead),
        "applications": int(per_lead.sum()),
        "history_months": round(float(months), 1),
        "holdout_applications": int((hold == 1).sum()),
        "holdout_non_applications": int((hold == 0).sum()),
    }
    needs = [
        ("leads", "leads", settings.min_training_leads, "LEADSCORE_MIN_TRAINING_LEADS"),
        (
            "applications",
            "leads with an application",
            settings.min_training_applications,
            "LEADSCORE_MIN_TRAINING_APPLICATIONS",
        ),
        ("history_months", "months of lead history", settings.min_history_months, "LEADSCORE_MIN_HISTORY_MONTHS"),
        ("holdout_applications", "applications in the holdout block", 1, "the time split"),
        ("holdout_non_applications", "non-applications in the holdout block", 1, "the time split"),
    ]
    short = [
        f"{found[key]:,} {what} (needs {need:,}, {where})" for key, what, need, where in needs if found[key] < need
    ]
    if short:
        raise InsufficientDataError(
            f"the training data as of {as_of:%Y-%m-%d} is too thin to fit a model: it holds "
            + "; ".join(short)
            + f". {WHAT_TO_DO}"
        )
    return found
