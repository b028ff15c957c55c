"""The landmark training set and its leak-free time split (BRIEF §5).

A landmark row describes one lead at one lead age (landmark day d) while the lead is still open, with the features
as of that moment (through ``data.features.features_at``, the same path scoring uses) and what happened next: the time
to the application (event) or to censoring, and the H-day label. Training and scoring therefore see features of the
same kind: scoring describes an open lead at its current age, training describes open leads at fixed ages.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from leadscore.data.features import features_at

DEFAULT_LANDMARK_DAYS: tuple[int, ...] = (0, 1, 3, 7, 14, 30, 60, 90, 180, 270)
_US_PER_DAY = 86_400 * 1_000_000
DEFAULT_HOLDOUT_DAYS = 120
DEFAULT_HOLDOUT_SHARE = 0.25
FULL_OUTCOMES = ("duration", "event", "label")
SAMPLE_SEED = 20261202  # the lead sample's seed (sample_leads): fixed, so re-running a training draws the same leads


class TrainingSetError(ValueError):
    """The training set cannot be built or split as asked (bad parameters or too little data)."""


@dataclass(frozen=True)
class TrainingSet:
    """Landmark rows with a time split into an earlier training block and a later holdout block.

    ``rows`` holds every landmark row; ``train_mask`` and ``holdout_mask`` select the blocks (rows in neither fall in
    the gap or have labels that are not yet observed). In training rows ``duration``, ``event``, ``label`` and
    ``observed_h`` are re-censored at ``split_time``; holdout rows keep the values censored at ``as_of``.
    """

    rows: pd.DataFrame
    train_mask: np.ndarray
    holdout_mask: np.ndarray
    as_of: pd.Timestamp
    split_time: pd.Timestamp
    horizon_days: int
    info: dict = field(default_factory=dict)

    @property
    def train(self) -> pd.DataFrame:
        """The training block (index reset)."""
        return self.rows.loc[self.train_mask].reset_index(drop=True)

    @property
    def holdout(self) -> pd.DataFrame:
        """The holdout block (index reset)."""
        return self.rows.loc[self.holdout_mask].reset_index(drop=True)


def _timestamp(value: object, name: str) -> pd.Timestamp:
    ts = pd.Timestamp(value)
    if ts is pd.NaT:
        raise TrainingSetError(f"{name} is missing")
    if ts.tzinfo is not None:
        ts = ts.tz_convert("UTC").tz_localize(None)
    return ts


def _us(values: pd.Series) -> np.ndarray:
    """datetime64 values as int64 microseconds; NaT becomes the int64 minimum (callers test ``isna`` first)."""
    return values.to_numpy(dtype="datetime64[us]").view("int64")


def _outcomes(t_us: np.ndarray, app_us: np.ndarray, has_app: np.ndarray, censor_us: int, horizon_days: int) -> dict:
    """duration, event, label, observed_h of rows at times ``t_us`` given applications and a censoring time.

    Everything strictly before ``censor_us`` is observed (extract intervals are half-open). The label asks whether
    the application falls in ``(t, t + H]``; it is known when it is observed there, or when ``t + H < censor``.
    """
    h_us = horizon_days * _US_PER_DAY
    event = has_app & (app_us < censor_us)
    end = np.where(event, app_us, censor_us)
    duration = (end - t_us) / _US_PER_DAY
    hit = event & (app_us <= t_us + h_us)
    observed = hit | (t_us + h_us < censor_us)
    label = np.where(hit, 1.0, np.where(observed, 0.0, np.nan))
    return {"duration": duration, "event": event, "label": label, "observed_h": observed}


def _in_window(leads: pd.DataFrame, as_of: pd.Timestamp, window_days: int) -> np.ndarray:
    """Non-test leads whose first origin falls in ``[as_of - window_days, as_of)``: the leads training may use."""
    origin = leads["origin_date"]
    in_window = (origin >= as_of - pd.Timedelta(days=window_days)) & (origin < as_of)
    return in_window.to_numpy(dtype=bool, na_value=False) & ~leads["is_test"].to_numpy(dtype=bool)


def sample_leads(
    leads: pd.DataFrame, as_of: pd.Timestamp, window_days: int, max_leads: int, seed: int = SAMPLE_SEED
) -> tuple[pd.DataFrame, dict]:
    """Cap the leads training uses: above ``max_leads`` eligible leads, keep a uniform random sample of them.

    Eligible leads are those ``build_landmarks`` would use (non-test, first origin in the training window). The sample
    is drawn by lead, not by landmark row, so a sampled lead keeps all its rows and no weights are needed: every lead
    has the same chance to be kept, and the estimates stay unbiased for the population of leads. The draw keeps the
    ``max_leads`` leads of smallest seeded hash of ``person_guid``: the same leads table and seed give the same sample
    in any row order, and a later training (more leads) keeps most of the earlier sample.

    Args:
        leads: the cleaned leads table. as_of, window_days: as ``build_landmarks``. max_leads: the cap (0: no cap).
        seed: the draw's seed.
    Returns:
        (leads, info). At or below the cap ``leads`` is returned as given; above it, only the sampled leads.
        ``info``: eligible_leads, max_leads, used_leads, sampled (bool), seed.
    Raises:
        TrainingSetError: a negative cap.
    """
    if max_leads < 0:
        raise TrainingSetError(f"max_leads must be >= 0 (0: no cap), got {max_leads}")
    eligible = _in_window(leads, _timestamp(as_of, "as_of"), window_days)
    n = int(eligible.sum())
    info = {"eligible_leads": n, "max_leads": int(max_leads), "used_leads": n, "sampled": False, "seed": int(seed)}
    if max_leads == 0 or n <= max_leads:
        return leads, info
    candidates = leads.loc[eligible]
    key = f"{seed:016d}"[-16:]  # pandas' hash key is 16 characters
    hashes = pd.util.hash_pandas_object(candidates["person_guid"].astype("str"), index=False, hash_key=key)
    keep = np.argpartition(hashes.to_numpy(), max_leads - 1)[:max_leads]
    info.update(used_leads=int(max_leads), sampled=True)
    return candidates.iloc[np.sort(keep)], info


def build_landmarks(
    leads: pd.DataFrame,
    interactions: pd.DataFrame,
    as_of: pd.Timestamp,
    landmark_days: tuple[int, ...] = DEFAULT_LANDMARK_DAYS,
    window_days: int = 3 * 365,
    horizon_days: int = 30,
) -> pd.DataFrame:
    """Landmark rows: one per (lead, landmark day) at which the lead is still open, with features and outcomes.

    Args:
        leads: the cleaned leads table (data.tables.LEAD_COLUMNS).
        interactions: the cleaned interactions table (data.tables.INTERACTION_COLUMNS).
        as_of: the training date; everything strictly before it is known, nothing after it is used.
        landmark_days: lead ages in whole days (non-negative, distinct).
        window_days: use leads whose first origin falls in ``[as_of - window_days, as_of)``.
        horizon_days: H of the label.
    Returns:
        One row per (non-test lead in the window, landmark day d) with landmark time ``t = origin_date + d days``,
        ``t < as_of`` and no application at or before ``t`` (an application exactly at ``t`` makes the lead not open:
        the label window ``(t, t + H]`` could not see it). Rows ordered by lead (order of ``leads``) then d.
        Columns: ``person_guid``, ``landmark_day`` (int64), ``as_of`` (= t), ``origin_date``, every column of
        data.tables.FEATURE_COLUMNS (features from interactions strictly before t), ``duration`` (days from t to the
        application when it is observed before ``as_of``, else to ``as_of``), ``event`` (bool: application observed
        before ``as_of``), ``label`` (1.0 if the application is in ``(t, t + H]``, 0.0 if it is not and
        ``t + H < as_of``, NaN when not yet known), ``observed_h`` (bool: label known).
    Raises:
        TrainingSetError: bad parameters.
        data.features.FeatureInputError: inputs break the cleaned-table contract.
    """
    as_of = _timestamp(as_of, "as_of")
    days = tuple(int(d) for d in landmark_days)
    if not days or min(days) < 0 or len(set(days)) != len(days):
        raise TrainingSetError(f"landmark_days must be distinct non-negative whole days, got {landmark_days!r}")
    if horizon_days <= 0 or window_days <= 0:
        raise TrainingSetError(f"horizon_days and window_days must be positive, got {horizon_days}, {window_days}")
    days = tuple(sorted(days))

    cohort = leads.loc[_in_window(leads, as_of, window_days)]
    origin_us = _us(cohort["origin_date"])
    has_app = cohort["application_created"].notna().to_numpy()
    app_us = _us(cohort["application_created"])
    as_of_us = int(_us(pd.Series([as_of]))[0])

    n_days = len(days)
    lead_pos = np.repeat(np.arange(len(cohort)), n_days)
    d = np.tile(np.asarray(days, dtype=np.int64), len(cohort))
    t_us = origin_us[lead_pos] + d * _US_PER_DAY
    open_at_t = (t_us < as_of_us) & ~(has_app[lead_pos] & (app_us[lead_pos] <= t_us))
    lead_pos, d, t_us = lead_pos[open_at_t], d[open_at_t], t_us[open_at_t]

    guids = cohort["person_guid"].take(lead_pos).reset_index(drop=True).astype("str")
    points = pd.DataFrame({"person_guid": guids, "as_of": pd.Series(t_us.view("datetime64[us]"))})
    rows = features_at(points, leads, interactions)
    rows.insert(1, "landmark_day", d)
    rows.insert(3, "origin_date", pd.Series(origin_us[lead_pos].view("datetime64[us]")))
    outcome = _outcomes(t_us, app_us[lead_pos], has_app[lead_pos], as_of_us, horizon_days)
    for name, values in outcome.items():
        rows[name] = values
    return rows


def time_split(
    rows: pd.DataFrame, as_of: pd.Timestamp, horizon_days: int, holdout_days: int | None = None
) -> TrainingSet:
    """Split landmark rows by landmark time into a training block and a later holdout block, with an H-day gap.

    Which rows, with ``L = as_of - H`` (last landmark time whose label is fully observed) and
    ``split_time = L - holdout_days``:
      * holdout: ``split_time <= t < L``. All their labels are observed (``t + H < as_of``); values as built.
      * training: ``t < split_time - H``, with duration/event/label re-censored at ``split_time``: an application
        at or after ``split_time`` is not an event, durations stop at ``split_time``. Their label windows
        ``(t, t + H]`` end before ``split_time``, so labels are complete and unchanged by the re-censoring.
      * neither: ``split_time - H <= t < split_time`` (the gap: their labels would need outcomes after
        ``split_time``) and ``t >= L`` (labels not yet observed).
    Why: the fitted model sees nothing stamped at or after ``split_time`` (features of training rows use events
    before their ``t``, outcomes are cut at ``split_time``), while every holdout label window lies after
    ``split_time``. A lead may appear in both blocks (at different ages), exactly as a deployed model scores open
    leads whose earlier history it was trained on, censored.

    Args:
        rows: landmark rows from ``build_landmarks`` (built with the same ``as_of`` and ``horizon_days``).
        as_of: the training date the rows were censored at.
        horizon_days: H.
        holdout_days: length of the holdout range of landmark times; default the smaller of 120 days and 25 % of
            the range from the earliest landmark time to ``L``.
    Returns:
        A TrainingSet over all ``rows`` (index reset); ``info`` holds the counts and positive rates of each block.
        ``full_duration``, ``full_event`` and ``full_label`` keep every row's outcomes censored at ``as_of`` (before
        the training block's re-censoring): the refit of the chosen candidate on all rows with ``t < L`` uses them.
    Raises:
        TrainingSetError: missing columns, bad parameters, or an empty block.
    """
    needed = ("as_of", "duration", "event", "label", "observed_h")
    missing = [c for c in needed if c not in rows.columns]
    if missing:
        raise TrainingSetError(f"rows lack column(s) {missing}; build them with build_landmarks")
    if horizon_days <= 0:
        raise TrainingSetError(f"horizon_days must be positive, got {horizon_days}")
    if rows.empty:
        raise TrainingSetError("no landmark rows to split")
    as_of = _timestamp(as_of, "as_of")
    horizon = pd.Timedelta(days=horizon_days)
    label_end = as_of - horizon
    t = rows["as_of"]
    if holdout_days is None:
        span_days = (label_end - t.min()) / pd.Timedelta(days=1)
        holdout_days = int(min(DEFAULT_HOLDOUT_DAYS, max(1, math.floor(DEFAULT_HOLDOUT_SHARE * span_days))))
    if holdout_days <= 0:
        raise TrainingSetError(f"holdout_days must be positive, got {holdout_days}")
    split_time = label_end - pd.Timedelta(days=holdout_days)

    holdout = ((t >= split_time) & (t < label_end)).to_numpy(dtype=bool)
    train = (t < split_time - horizon).to_numpy(dtype=bool)
    if not train.any() or not holdout.any():
        raise TrainingSetError(
            f"time split at {split_time} (holdout {holdout_days} days, H {horizon_days}) leaves "
            f"{int(train.sum())} training and {int(holdout.sum())} holdout rows; landmark times span "
            f"{t.min()} to {t.max()}: lower holdout_days or widen the training window"
        )

    out = rows.reset_index(drop=True)  # copy-on-write: assigning columns below never touches `rows`
    for name in FULL_OUTCOMES:  # the outcomes censored at as_of, kept for the refit on every observed label
        out[f"full_{name}"] = out[name].to_numpy(copy=True)
    t_us = _us(out["as_of"])[train]
    has_app = out["event"].to_numpy(dtype=bool)[train]
    app_us = t_us + np.round(out["duration"].to_numpy(dtype=np.float64)[train] * _US_PER_DAY).astype(np.int64)
    split_us = int(_us(pd.Series([split_time]))[0])
    recensored = _outcomes(t_us, app_us, has_app, split_us, horizon_days)
    for name, values in recensored.items():
        column = out[name].to_numpy(copy=True)
        column[train] = values
        out[name] = column

    def block_info(mask: np.ndarray) -> dict:
        times = out["as_of"].to_numpy()[mask]
        return {
            "rows": int(mask.sum()),
            "leads": int(out["person_guid"][mask].nunique()) if "person_guid" in out else None,
            "events": int(out["event"].to_numpy(dtype=bool)[mask].sum()),
            "positive_rate": float(np.nanmean(out["label"].to_numpy(dtype=np.float64)[mask])),
            "t_min": str(pd.Timestamp(times.min())),
            "t_max": str(pd.Timestamp(times.max())),
        }

    info = {
        "holdout_days": int(holdout_days),
        "split_time": str(split_time),
        "train_censor_time": str(split_time),
        "gap_days": int(horizon_days),
        "rows_total": len(out),
        "rows_in_gap": int(((t >= split_time - horizon) & (t < split_time)).sum()),
        "rows_label_unobserved": int((t >= label_end).sum()),
        "train": block_info(train),
        "holdout": block_info(holdout),
    }
    return TrainingSet(
        rows=out,
        train_mask=train,
        holdout_mask=holdout,
        as_of=as_of,
        split_time=split_time,
        horizon_days=int(horizon_days),
        info=info,
    )
