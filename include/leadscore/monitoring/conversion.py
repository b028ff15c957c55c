"""Conversion in the training rows, for the insight report: per-lead outcomes and Kaplan–Meier conversion overall,
by source and by lead age (lifelines).

Training rows are the landmark rows of the training set: one row per lead and landmark at which the lead was still
open, with the feature columns, ``person_guid``, ``duration`` (days from the landmark to the application or to
censoring) and ``event`` (the application happened).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from leadscore.data.tables import AGE_COLUMN

KM_DAYS = (7, 30, 90, 180)


class InsightInputError(ValueError):
    """The training rows lack a column the insight report needs, or are empty."""


def _require(rows: pd.DataFrame, columns: tuple[str, ...]) -> None:
    missing = [c for c in columns if c not in rows.columns]
    if missing:
        raise InsightInputError(f"training rows lack {missing}; pass the training set's landmark rows")
    if len(rows) == 0:
        raise InsightInputError("training rows are empty: nothing to report on")


def lead_level(rows: pd.DataFrame) -> pd.DataFrame:
    """One row per lead from its earliest landmark: days from origin to application or censoring, event, source.

    Returns:
        Columns person_guid, source, time (days since origin), event (bool).
    """
    first = rows.sort_values(AGE_COLUMN, kind="stable").drop_duplicates("person_guid", keep="first")
    return pd.DataFrame(
        {
            "person_guid": first["person_guid"].to_numpy(),
            "source": first["source"].astype("string").fillna("(none)").to_numpy(dtype=object),
            "time": first[AGE_COLUMN].to_numpy(dtype=float) + first["duration"].to_numpy(dtype=float),
            "event": first["event"].to_numpy(dtype=bool),
        }
    )


def km_conversion(time: np.ndarray, event: np.ndarray, days: tuple[int, ...] = KM_DAYS) -> dict[int, float]:
    """Kaplan–Meier share applied (1 - S(t)) at each of ``days``, censoring handled."""
    from lifelines import KaplanMeierFitter

    km = KaplanMeierFitter().fit(np.clip(np.asarray(time, dtype=float), 1e-9, None), np.asarray(event, dtype=bool))
    surv = km.survival_function_at_times(list(days)).to_numpy(dtype=float)
    return {d: float(1 - s) for d, s in zip(days, surv, strict=True)}


def conversion_by_source(leads: pd.DataFrame, days: tuple[int, ...] = KM_DAYS) -> pd.DataFrame:
    """Kaplan–Meier conversion by lead source: leads, applications and share applied by each of ``days``."""
    rows = []
    for source, g in leads.groupby("source", sort=False):
        conv = km_conversion(g["time"].to_numpy(), g["event"].to_numpy(), days)
        rows.append(
            {
                "source": source,
                "leads": len(g),
                "applied": int(g["event"].sum()),
                **{f"by day {d}": conv[d] for d in days},
            }
        )
    out = pd.DataFrame(rows)
    return out.sort_values("leads", ascending=False, kind="stable").reset_index(drop=True)


def conversion_by_age(rows: pd.DataFrame, horizon_days: int, landmarks: tuple[int, ...]) -> pd.DataFrame:
    """P(apply within H days | still open at lead age a) per landmark age, Kaplan–Meier from the landmark rows."""
    age = np.floor(rows[AGE_COLUMN].to_numpy(dtype=float))
    out = []
    for a in landmarks:
        sel = age == a
        if sel.sum() < 5:
            continue
        conv = km_conversion(
            rows["duration"].to_numpy(dtype=float)[sel], rows["event"].to_numpy(dtype=bool)[sel], (horizon_days,)
        )
        out.append(
            {
                "lead age (days)": int(a),
                "open leads": int(sel.sum()),
                f"apply within {horizon_days} days": conv[horizon_days],
            }
        )
    return pd.DataFrame(out)
