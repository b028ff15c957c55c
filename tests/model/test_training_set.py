"""Landmark rows, their outcomes and the leak-free time split."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from leadscore.data.tables import FEATURE_COLUMNS
from leadscore.model.training_set import TrainingSetError, build_landmarks, sample_leads, time_split
from tests.data.test_features import make_interactions, make_leads

AS_OF = pd.Timestamp("2024-06-01")
DAY = pd.Timedelta(days=1)
SEC = pd.Timedelta(seconds=1)
H = 30


def test_columns_and_rows_stop_once_the_lead_applied():
    o = AS_OF - 200 * DAY
    leads = make_leads(
        [
            {"person_guid": "applies_day5", "origin_date": o, "application_created": o + 5 * DAY},
            {"person_guid": "applies_at_day3", "origin_date": o, "application_created": o + 3 * DAY},
            {"person_guid": "applies_at_origin", "origin_date": o, "application_created": o},
            {"person_guid": "never", "origin_date": o},
            {"person_guid": "young", "origin_date": AS_OF - 2 * DAY},
            {"person_guid": "test", "origin_date": o, "is_test": True},
            {"person_guid": "too_old", "origin_date": AS_OF - 4 * 365 * DAY},
            {"person_guid": "future", "origin_date": AS_OF},
        ]
    )
    rows = build_landmarks(leads, make_interactions([]), AS_OF, horizon_days=H)
    assert list(rows.columns) == [
        "person_guid", "landmark_day", "as_of", "origin_date", *FEATURE_COLUMNS,
        "duration", "event", "label", "observed_h",
    ]  # fmt: skip
    days = rows.groupby("person_guid")["landmark_day"].apply(list).to_dict()
    assert days == {
        "applies_day5": [0, 1, 3],
        "applies_at_day3": [0, 1],  # an application exactly at t: not open at t
        "never": [0, 1, 3, 7, 14, 30, 60, 90, 180],  # 270 is after as_of
        "young": [0, 1],
    }
    assert (rows["as_of"] == rows["origin_date"] + pd.to_timedelta(rows["landmark_day"], unit="D")).all()
    assert (rows["days_as_lead"] == rows["landmark_day"]).all()


def test_durations_events_and_labels():
    o = AS_OF - 100 * DAY
    leads = make_leads(
        [
            {"person_guid": "p", "origin_date": o, "application_created": o + 40 * DAY},
            {"person_guid": "late", "origin_date": AS_OF - 10 * DAY, "application_created": AS_OF + DAY},
            {"person_guid": "edge", "origin_date": AS_OF - 40 * DAY},
            {"person_guid": "bound", "origin_date": o, "application_created": o + 37 * DAY},
        ]
    )
    rows = build_landmarks(leads, make_interactions([]), AS_OF, horizon_days=H).set_index(
        ["person_guid", "landmark_day"]
    )
    p = rows.loc["p"]
    assert list(p.index) == [0, 1, 3, 7, 14, 30]
    assert p["duration"].tolist() == [40, 39, 37, 33, 26, 10]
    assert p["event"].all()
    # the application at day 40 is inside (t, t + 30] for t at day 10 or later: landmarks 14 and 30
    assert p["label"].tolist() == [0, 0, 0, 0, 1, 1]
    assert p["observed_h"].all()

    bound = rows.loc["bound"]  # the label window (t, t + H] includes its end: day 7 + 30 = day 37
    assert bound["label"].tolist() == [0, 0, 0, 1, 1, 1]

    late = rows.loc["late"]  # applies after as_of: censored, label unknown (t + H >= as_of)
    assert late["event"].tolist() == [False, False, False, False]
    assert late["duration"].tolist() == [10, 9, 7, 3]
    assert late["label"].isna().all() and not late["observed_h"].any()

    edge = rows.loc["edge"]  # t + H < as_of only for landmarks before day 10
    assert edge["label"].tolist()[:4] == [0, 0, 0, 0]
    assert edge.loc[[0, 1, 3, 7], "observed_h"].all()
    assert np.isnan(edge.loc[14, "label"]) and np.isnan(edge.loc[30, "label"])


def test_landmark_features_are_point_in_time():
    o = AS_OF - 100 * DAY
    leads = make_leads([{"person_guid": "a", "origin_date": o}])
    inter = make_interactions(
        [
            ("a", "email_sent", "m", o),
            ("a", "email_sent", "m", o + 3 * DAY - SEC),
            ("a", "email_sent", "m", o + 3 * DAY),
        ]
    )
    rows = build_landmarks(leads, inter, AS_OF, horizon_days=H).set_index("landmark_day")
    assert rows.loc[0, "email_sent"] == 0  # the event at the origin instant is not before t = origin
    assert rows.loc[1, "email_sent"] == 1
    assert rows.loc[3, "email_sent"] == 2
    assert rows.loc[7, "email_sent"] == 3


def _world(n: int = 120, seed: int = 5) -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    origin = AS_OF - pd.to_timedelta(rng.integers(1, 400 * 86_400, n), unit="s")
    applies = rng.random(n) < 0.4
    app = origin + pd.to_timedelta(rng.integers(1, 90 * 86_400, n), unit="s")
    leads = make_leads(
        [
            {"person_guid": f"g{i}", "origin_date": origin[i], "application_created": app[i] if applies[i] else None}
            for i in range(n)
        ]
    )
    m = n * 15
    who = rng.integers(0, n, m)
    events = [
        (f"g{w}", k, "/apply" if k == "ping" else "m", origin[w] + pd.Timedelta(seconds=int(s)))
        for w, k, s in zip(
            who, rng.choice(["email_sent", "email_open", "ping"], m), rng.integers(0, 200 * 86_400, m), strict=True
        )
    ]
    return leads, make_interactions(events)


def test_time_split_has_the_gap_and_training_sees_nothing_after_its_censor_time():
    leads, inter = _world()
    rows = build_landmarks(leads, inter, AS_OF, horizon_days=H)
    ts = time_split(rows, AS_OF, H, holdout_days=60)
    split = AS_OF - H * DAY - 60 * DAY
    assert ts.split_time == split
    t = ts.rows["as_of"]
    assert (t[ts.holdout_mask] >= split).all() and (t[ts.holdout_mask] < AS_OF - H * DAY).all()
    assert (t[ts.train_mask] < split - H * DAY).all()
    assert not (ts.train_mask & ts.holdout_mask).any()
    gap = (t >= split - H * DAY) & (t < split)
    assert gap.any() and not (ts.train_mask | ts.holdout_mask)[gap.to_numpy()].any()
    assert ts.holdout["observed_h"].all() and ts.train["observed_h"].all()
    assert ts.info["train"]["rows"] == ts.train_mask.sum() > 0 and ts.info["holdout"]["rows"] > 0

    # Training rows are exactly what a training run at split_time would have built: no feature, duration, event or
    # label depends on anything stamped at or after split_time.
    before = leads.copy()
    before["application_created"] = before["application_created"].where(before["application_created"] < split)
    inter_before = inter[inter["occurred"] < split]
    rebuilt = build_landmarks(before, inter_before, split, horizon_days=H)
    rebuilt = rebuilt[rebuilt["as_of"] < split - H * DAY].reset_index(drop=True)
    full = [c for c in ts.train.columns if c.startswith("full_")]  # outcomes at as_of, kept for the refit
    assert full == ["full_duration", "full_event", "full_label"]
    pd.testing.assert_frame_equal(ts.train.drop(columns=full), rebuilt)
    # and the re-censoring changed something (an application between split_time and as_of became censored)
    original = rows.reset_index(drop=True).loc[ts.train_mask]
    assert (original["event"].to_numpy() != ts.train["event"].to_numpy()).any()
    # holdout rows keep the values censored at as_of
    pd.testing.assert_frame_equal(
        ts.holdout.drop(columns=full), rows.reset_index(drop=True).loc[ts.holdout_mask].reset_index(drop=True)
    )
    # the full outcomes of training rows are the ones censored at as_of, before the re-censoring
    np.testing.assert_array_equal(ts.train["full_event"].to_numpy(), original["event"].to_numpy())


def test_default_holdout_and_errors():
    leads, inter = _world()
    rows = build_landmarks(leads, inter, AS_OF, horizon_days=H)
    ts = time_split(rows, AS_OF, H)
    span = (AS_OF - H * DAY - rows["as_of"].min()) / DAY
    assert ts.info["holdout_days"] == min(120, int(0.25 * span))
    with pytest.raises(TrainingSetError, match="training"):
        time_split(rows, AS_OF, H, holdout_days=5000)
    with pytest.raises(TrainingSetError, match="landmark_days"):
        build_landmarks(leads, inter, AS_OF, landmark_days=(0, 0, 3))


def test_attach_truth_uses_each_rows_own_date():
    from leadscore.tasks.ceiling import attach_truth  # the task layer's seam: model/ never imports sandbox/

    created = pd.Timestamp("2024-01-01")
    truth = pd.DataFrame(
        {
            "person_guid": pd.Series(["a", "b"], dtype="str"),
            "created": pd.Series([created, created], dtype="datetime64[us]"),
            "eta": [0.0, 0.5],
            "a1": [0.1, 0.1],
            "tau1": [5.0, 5.0],
            "a2": [0.01, 0.01],
            "tau2": [100.0, 100.0],
            "true_app_time": pd.Series([None, created + 20 * DAY], dtype="datetime64[us]"),
        }
    )
    rows = pd.DataFrame(
        {
            "person_guid": ["a", "a", "b", "b"],
            "as_of": pd.Series(
                [created, created + 10 * DAY, created + 3 * DAY, created + 30 * DAY], dtype="datetime64[us]"
            ),
            "x": [1, 2, 3, 4],
        }
    )
    out = attach_truth(rows, truth, H)

    def cum(s: float) -> float:  # the generator's baseline cumulative hazard, written out
        return 0.1 * 5 * -np.expm1(-s / 5) + 0.01 * 100 * -np.expm1(-s / 100)

    expected = [
        1 - np.exp(-(cum(30) - cum(0))),
        1 - np.exp(-(cum(40) - cum(10))),
        1 - np.exp(-np.exp(0.5) * (cum(33) - cum(3))),
        0.0,  # already applied at day 20
    ]
    assert out["true_p"].to_numpy() == pytest.approx(expected, rel=1e-12)
    assert out["x"].tolist() == [1, 2, 3, 4] and "true_p" not in rows


def test_lead_cap_samples_whole_leads_deterministically_and_counts_them():
    leads, inter = _world(n=200)
    leads = pd.concat(
        [leads, make_leads([{"person_guid": "test", "origin_date": AS_OF - 5 * DAY, "is_test": True}])],
        ignore_index=True,
    )
    full = build_landmarks(leads, inter, AS_OF, horizon_days=H)
    sampled, info = sample_leads(leads, AS_OF, 3 * 365, 50)
    assert info == {"eligible_leads": 200, "max_leads": 50, "used_leads": 50, "sampled": True, "seed": info["seed"]}
    assert len(sampled) == 50 and sampled["person_guid"].is_unique and "test" not in set(sampled["person_guid"])
    # By lead, not by row, and independent of the leads' row order: a shuffled table draws the same leads.
    again, _ = sample_leads(leads.sample(frac=1.0, random_state=1), AS_OF, 3 * 365, 50)
    assert set(again["person_guid"]) == set(sampled["person_guid"])
    other, _ = sample_leads(leads, AS_OF, 3 * 365, 50, seed=7)
    assert set(other["person_guid"]) != set(sampled["person_guid"])
    rows = build_landmarks(sampled, inter, AS_OF, horizon_days=H)
    expected = full[full["person_guid"].isin(sampled["person_guid"])].reset_index(drop=True)
    pd.testing.assert_frame_equal(rows, expected)  # every landmark row of a sampled lead, with the same features


def test_lead_cap_changes_nothing_at_or_below_it():
    leads, _ = _world(n=80)
    for cap in (0, 80, 1000):
        same, info = sample_leads(leads, AS_OF, 3 * 365, cap)
        assert same is leads
        assert info["sampled"] is False and info["used_leads"] == info["eligible_leads"] == 80
    with pytest.raises(TrainingSetError, match="max_leads"):
        sample_leads(leads, AS_OF, 3 * 365, -1)
