"""Synthetic landmark training sets of the same shape as model.training_set.TrainingSet, with a known true hazard.

Each lead has a latent interest u; its hazard of applying at lead age a is lam0 * exp(eta) * exp(-a / tau), with eta
from source, college and u. Features at a landmark are noisy counts driven by u and the lead's age, so later
landmarks reveal more. The true H-day probability from a landmark follows from the cumulative hazard.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from leadscore.data.tables import FEATURE_COLUMNS, FEATURE_NUMERIC
from leadscore.model.training_set import TrainingSet

SOURCES = {"Source": (0.45, -1.6), "Inquiry Form": (0.2, 0.9), "Vendor Lead": (0.2, -1.2), "Event": (0.13, 0.2)}
RARE_SOURCES = ["Ad-Hoc Data Load", "Campus Visit"]
COLLEGES = ["Engineering", "Business", "Arts", "Nursing"]


# The real TrainingSet, filled with synthetic rows (the name says where they come from).
SyntheticTrainingSet = TrainingSet


def make_training_set(
    n_leads: int = 3000,
    seed: int = 0,
    horizon_days: int = 30,
    landmarks: tuple[int, ...] = (0, 3, 14, 60, 180),
    years: float = 2.0,
) -> SyntheticTrainingSet:
    """Build a synthetic landmark training set (rows, masks, dates) with ``true_p``."""
    rng = np.random.default_rng(seed)
    start = pd.Timestamp("2023-01-01")
    as_of = start + pd.Timedelta(days=int(365 * years))
    split_time = as_of - pd.Timedelta(days=int(365 * years * 0.3))
    origin_day = rng.uniform(0, 365 * years - 10, n_leads)
    names = [*SOURCES, *RARE_SOURCES]
    probs = np.array([v[0] for v in SOURCES.values()] + [0.01, 0.01])
    source = rng.choice(names, size=n_leads, p=probs / probs.sum())
    src_eff = np.array([SOURCES.get(s, (0, -0.5))[1] for s in source])
    college = rng.choice(np.array([*COLLEGES, None], dtype=object), size=n_leads, p=[0.3, 0.25, 0.15, 0.13, 0.17])
    col_eff = np.where(pd.isna(college), -0.4, 0.0) + np.where(college == "Nursing", 0.3, 0.0)
    u = rng.normal(0, 1, n_leads)
    eta = src_eff + col_eff + 0.8 * u
    lam0, tau = 0.004, 40.0
    scale = lam0 * np.exp(eta) * tau

    def cumhaz(a: np.ndarray, idx: np.ndarray) -> np.ndarray:
        return scale[idx] * (1 - np.exp(-a / tau))

    e = rng.exponential(1.0, n_leads)
    with np.errstate(invalid="ignore", divide="ignore"):
        t_event = np.where(e < scale, -tau * np.log1p(-e / scale), np.inf)
    frames = []
    for lm in landmarks:
        lm_day = origin_day + lm
        open_ = (t_event > lm) & (lm_day < 365 * years)
        idx = np.flatnonzero(open_)
        k = len(idx)
        ui = u[idx]
        age = np.full(k, float(lm)) + rng.uniform(0, 0.99, k)
        act = np.exp(0.6 * ui)
        sent = rng.poisson(1 + 0.3 * age)
        opens = rng.binomial(sent, 1 / (1 + np.exp(-(ui - 0.5))))
        clicks = rng.binomial(opens, 0.25)
        pings = rng.poisson(act * (0.5 + 0.05 * age))
        f = pd.DataFrame({c: np.zeros(k) for c in FEATURE_NUMERIC})
        f["days_as_lead"] = age
        f["email_sent"] = sent
        f["email_open"] = opens
        f["email_click"] = clicks
        f["email_open_rate"] = np.where(sent > 0, opens / np.maximum(sent, 1), 0.0)
        f["email_click_rate"] = np.where(sent > 0, clicks / np.maximum(sent, 1), 0.0)
        f["email_sent_30d"] = np.minimum(sent, rng.poisson(8, k))
        f["email_open_30d"] = np.minimum(opens, f["email_sent_30d"])
        f["email_click_30d"] = np.minimum(clicks, f["email_open_30d"])
        f["pings"] = pings
        f["pings_30d"] = np.minimum(pings, rng.poisson(act, k))
        f["distinct_urls"] = np.minimum(pings, rng.poisson(act * 2, k))
        f["ping_apply"] = rng.binomial(pings, 0.1)
        f["ping_visit"] = rng.binomial(pings, 0.1)
        f["ping_aid"] = rng.binomial(pings, 0.05)
        f["ping_program"] = rng.binomial(pings, 0.2)
        f["activity_phone"] = rng.poisson(0.1 * act)
        f["events_registered"] = rng.poisson(0.1 * act)
        f["events_attended"] = rng.binomial(f["events_registered"].to_numpy(), 0.6)
        engaged = (opens + pings + f["events_registered"]) > 0
        f["days_since_last_engagement"] = np.where(engaged, rng.uniform(0, 1, k) * age, age)
        f["college_missing"] = pd.isna(college[idx]).astype(int)
        f["no_email_sent"] = (sent == 0).astype(int)
        f["never_engaged"] = (~engaged).astype(int)
        f["opted_out"] = (rng.uniform(size=k) < 0.03).astype(int)
        f["source"] = pd.array(source[idx], dtype="string")
        f["college"] = pd.array(college[idx], dtype="string")
        f["person_guid"] = [f"p{i:07d}" for i in idx]
        f["landmark_day"] = lm
        f["origin_date"] = start + pd.to_timedelta(np.floor(origin_day[idx]), unit="D")
        f["as_of"] = f["origin_date"] + pd.to_timedelta(lm, unit="D")
        a0 = lm_day[idx] - origin_day[idx]
        horizon_end = a0 + horizon_days
        f["true_p"] = 1 - np.exp(-(cumhaz(horizon_end, idx) - cumhaz(a0, idx)))
        frames.append((f, idx, a0))
    rows = []
    for f, idx, a0 in frames:
        asof_day = (f["as_of"] - start).dt.days.to_numpy(dtype=float)
        holdout = asof_day >= (split_time - start).days
        # Training rows are censored at the split (the model must not see later outcomes); holdout rows at as_of.
        censor_day = np.where(holdout, (as_of - start).days, (split_time - start).days)
        follow = censor_day - asof_day
        t_rel = t_event[idx] - a0
        event = t_rel <= follow
        duration = np.where(event, t_rel, follow)
        label = np.where(t_rel <= horizon_days, 1.0, np.where(follow >= horizon_days, 0.0, np.nan))
        f = f.assign(duration=np.maximum(duration, 0.0), event=event, label=label, observed_h=~np.isnan(label))
        full_follow = (as_of - start).days - asof_day  # censored at as_of: what the refit on all rows sees
        full_event = t_rel <= full_follow
        f = f.assign(
            full_duration=np.maximum(np.where(full_event, t_rel, full_follow), 0.0),
            full_event=full_event,
            full_label=np.where(t_rel <= horizon_days, 1.0, np.where(full_follow >= horizon_days, 0.0, np.nan)),
        )
        rows.append(f[(follow > 0)])
    data = pd.concat(rows, ignore_index=True)
    # The feature contract: numeric features are floats, flags 0/1 integers.
    data[list(FEATURE_NUMERIC)] = data[list(FEATURE_NUMERIC)].astype("float64")
    asof_day = (data["as_of"] - start).dt.days.to_numpy()
    split_day = (split_time - start).days
    train_mask = asof_day < split_day - horizon_days
    holdout_mask = asof_day >= split_day
    cols = ["person_guid", "landmark_day", "as_of", "origin_date", *FEATURE_COLUMNS]
    cols += ["duration", "event", "label", "observed_h", "full_duration", "full_event", "full_label", "true_p"]
    return SyntheticTrainingSet(
        rows=data[cols],
        train_mask=train_mask,
        holdout_mask=holdout_mask,
        as_of=as_of,
        split_time=split_time,
        horizon_days=horizon_days,
        info={"n_leads": n_leads, "seed": seed, "synthetic": True},
    )


def make_thin_history(
    n_leads: int = 1500,
    seed: int = 0,
    months: int = 12,
    quiet_months: int = 5,
    applications: int = 60,
    horizon_days: int = 30,
) -> TrainingSet:
    """A thin real-looking history through the real landmark and split code: ``months`` of leads, no application in
    the first ``quiet_months`` (a CRM migration or a new funnel), about ``applications`` applications in all.

    Cleaned ``leads`` and ``interactions`` tables are built by hand (engaged leads open more e-mail and ping the apply
    page, and apply more often), then ``build_landmarks`` and ``time_split`` make the TrainingSet, as training does.
    """
    from leadscore.model.training_set import DEFAULT_LANDMARK_DAYS, build_landmarks, time_split

    rng = np.random.default_rng(seed)
    start = pd.Timestamp("2025-01-01")
    as_of = start + pd.DateOffset(months=months)
    quiet_end = start + pd.DateOffset(months=quiet_months)
    span_s = (as_of - start).total_seconds()
    origin = (start + pd.to_timedelta(np.round(rng.uniform(0, span_s - 86_400, n_leads)), unit="s")).as_unit("us")
    u = rng.normal(0, 1, n_leads)
    source = rng.choice(list(SOURCES), size=n_leads)
    college = rng.choice(np.array([*COLLEGES, None], dtype=object), size=n_leads)
    # Applications: weight by interest, only after the quiet months, within 120 days of the origin.
    delay = pd.to_timedelta(np.round(rng.exponential(25.0 * 86_400, n_leads)), unit="s")
    app_time = pd.Series(origin + delay).astype("datetime64[us]")
    eligible = ((app_time >= quiet_end) & (app_time < as_of - pd.Timedelta(days=1))).to_numpy()
    # A new funnel ramps up: the application rate grows with the months since the first application.
    ramp = np.clip((app_time - quiet_end).dt.days.to_numpy(dtype=float), 0.0, None)
    weight = np.exp(1.2 * u) * eligible * ramp
    chosen = rng.choice(n_leads, size=min(applications, int(eligible.sum())), replace=False, p=weight / weight.sum())
    app = pd.Series(pd.NaT, index=range(n_leads), dtype="datetime64[us]")
    app.iloc[chosen] = app_time.iloc[chosen].to_numpy()
    guids = pd.Series([f"{i:08x}-0000-4000-8000-000000000000" for i in range(n_leads)], dtype="string")
    leads = pd.DataFrame(
        {
            "person_guid": guids,
            "ref": pd.array(np.arange(n_leads), dtype="Int64"),
            "origin_date": pd.Series(origin, dtype="datetime64[us]"),
            "source": pd.array(source, dtype="string"),
            "college": pd.array(college, dtype="string"),
            "application_created": app,
            "is_test": np.zeros(n_leads, dtype=bool),
            "updated": pd.Series(origin, dtype="datetime64[us]"),
        }
    )
    rows = []
    n_events = rng.poisson(np.exp(0.5 * u) * 4)
    for i in np.flatnonzero(n_events):
        end = app.iloc[i] if pd.notna(app.iloc[i]) else as_of
        gap = (end - origin[i]).total_seconds()
        if gap <= 0:
            continue
        for when in sorted(rng.uniform(0, gap, n_events[i])):
            kind = rng.choice(["email_sent", "email_open", "ping"], p=[0.5, 0.3, 0.2])
            rows.append(
                (
                    guids[i],
                    kind,
                    "/apply/start" if kind == "ping" else "Newsletter",
                    origin[i] + pd.Timedelta(seconds=when),
                )
            )
    interactions = pd.DataFrame(rows, columns=["person_guid", "kind", "detail", "occurred"])
    interactions.insert(0, "interaction_guid", [f"i{k:09d}" for k in range(len(interactions))])
    interactions = interactions.astype(
        {"interaction_guid": "string", "person_guid": "string", "kind": "string", "detail": "string"}
    )
    interactions["occurred"] = interactions["occurred"].astype("datetime64[us]")
    landmarks = build_landmarks(leads, interactions, as_of, DEFAULT_LANDMARK_DAYS, 3 * 365, horizon_days)
    return time_split(landmarks, as_of, horizon_days)
