"""Pure tests of lead selection, scoring columns, scores, tiers, reasons, control and the safety checks."""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
import pytest

from leadscore.scoring.errors import DeliverySafetyError, ScoreValidationError, SelectionError
from leadscore.scoring.reasons import top_reasons
from leadscore.scoring.safety import check_delivery_safety
from leadscore.scoring.score import control_flags, score_file_columns, score_leads
from leadscore.scoring.select import select_leads
from leadscore.scoring.tiers import assign_tiers, lead_score_from_percentile, tier_counts
from leadscore.settings import Settings
from tests.scoring.fakes import DummyModel, ModelSignatureError, make_features

DAY = date(2024, 1, 7)
SETTINGS = Settings()


def test_score_columns_and_formats() -> None:
    features = make_features(1000, seed=1)
    model = DummyModel()
    scores = score_leads(model, features, "7", DAY, SETTINGS)
    assert list(scores.columns) == [*score_file_columns(30), "control"]
    assert model.checked == 1
    assert scores["person_guid"].tolist() == features["person_guid"].tolist()
    assert scores["lead_score"].between(1, 99).all()
    assert set(scores["lead_tier"]) == {"A", "B", "C", "D"}
    p = scores["p_apply_30d"].to_numpy()
    assert ((p >= 0) & (p <= 1)).all()
    assert np.allclose(p, np.round(p, 4))
    assert (scores["model_version"] == "7").all()
    assert (scores["scored_on"] == "2024-01-07").all()
    assert set(scores["control"]) == {0}


def test_lead_score_is_percentile_against_reference() -> None:
    assert lead_score_from_percentile(np.array([0.0, 0.5, 0.999, 1.0, 1.5, -0.2])).tolist() == [1, 50, 98, 99, 99, 1]
    # The dummy's reference scores are uniform on [0, 0.6]: p = 0.3 sits at the 50th percentile.
    model = DummyModel()
    features = make_features(3, seed=2)
    model.p_override = np.array([0.0, 0.3, 0.9])
    scores = score_leads(model, features, "1", DAY, SETTINGS)
    assert scores["lead_score"].tolist() == [1, 50, 99]


def test_tier_shares_and_deterministic_ties() -> None:
    n = 1000
    rng = np.random.default_rng(3)
    p = rng.random(n)
    guids = np.array([f"g{i:05d}" for i in range(n)], dtype=object)
    tiers = assign_tiers(p, guids, (0.05, 0.20, 0.50))
    assert pd.Series(tiers).value_counts().to_dict() == {"A": 50, "B": 150, "C": 300, "D": 500}
    assert p[tiers == "A"].min() >= p[tiers == "B"].max() >= p[tiers == "C"].min()
    # All tied: the tie is broken by GUID, whatever the row order.
    tied = assign_tiers(np.full(n, 0.1), guids, (0.05, 0.20, 0.50))
    assert set(tied[:50]) == {"A"} and set(tied[50:200]) == {"B"}
    perm = rng.permutation(n)
    assert (assign_tiers(np.full(n, 0.1), guids[perm], (0.05, 0.20, 0.50)) == tied[perm]).all()
    assert tier_counts(7, (0.05, 0.2, 0.5)).sum() == 7


@pytest.mark.parametrize("bad", [np.nan, 1.2, -0.1])
def test_bad_probabilities_stop_scoring(bad: float) -> None:
    features = make_features(20, seed=4)
    p = np.full(20, 0.1)
    p[5] = bad
    with pytest.raises(ScoreValidationError, match="1 of 20 probabilities"):
        score_leads(DummyModel(p_override=p), features, "1", DAY, SETTINGS)


def test_check_features_runs_first_and_horizon_must_match() -> None:
    features = make_features(10, seed=5).drop(columns=["pings"])
    with pytest.raises(ModelSignatureError, match="pings"):
        score_leads(DummyModel(), features, "1", DAY, SETTINGS)
    with pytest.raises(ScoreValidationError, match="horizon_days"):
        score_leads(DummyModel(horizon_days=60), make_features(10), "1", DAY, SETTINGS)


def test_reasons_phrases_from_values() -> None:
    features = make_features(4, seed=6)
    features["email_open_30d"] = [8.0, 0.0, 1.0, 0.0]
    features["ping_apply"] = [3.0, 0.0, 0.0, 0.0]
    features["events_registered"] = [2.0, 0.0, 0.0, 0.0]
    features["source"] = pd.array(["Inquiry Form", "Inquiry Form", "Source", "Source"], dtype="string")
    contributions = pd.DataFrame(
        {
            "email_open_30d": [3.0, 5.0, 0.5, 0.0],  # lead 1 has 0 opens: credited by the model, but not a reason
            "ping_apply": [2.0, 0.0, 0.0, 0.0],
            "events_registered": [1.0, 0.0, 0.0, 0.0],
            "source": [0.5, 1.0, -1.0, -1.0],
            "opted_out": [9.0, 9.0, 9.0, 9.0],  # flags are never reasons
        }
    )
    r1, r2, r3 = top_reasons(contributions, features)
    assert (r1[0], r2[0], r3[0]) == (
        "Opened 8 emails in the last 30 days",
        "Visited the apply page 3 times",
        "Registered for 2 events",
    )
    assert (r1[1], r2[1], r3[1]) == ("Source: Inquiry Form", "", "")
    assert (r1[2], r2[2]) == ("Opened 1 email in the last 30 days", "")
    assert (r1[3], r2[3], r3[3]) == ("", "", "")


def test_new_lead_and_recency_phrases() -> None:
    features = make_features(2, seed=7)
    features["days_as_lead"] = [3.0, 200.0]
    features["days_since_last_engagement"] = [1.0, 5.0]
    features["never_engaged"] = np.array([0, 1], dtype="int8")
    contributions = pd.DataFrame({"days_as_lead": [2.0, 0.1], "days_since_last_engagement": [1.0, 1.0]})
    r1, r2, _ = top_reasons(contributions, features)
    assert (r1[0], r2[0]) == ("New lead (3 days)", "Engaged yesterday")
    assert (r1[1], r2[1]) == ("Lead for 200 days", "")  # never engaged: recency is not a reason


def test_control_group_is_stable_per_lead() -> None:
    guids = pd.Series([f"g{i:05d}" for i in range(10_000)])
    a = control_flags(guids, DAY, 0.1)
    assert 0.08 < a.mean() < 0.12
    shuffled = guids.sample(frac=1.0, random_state=1)
    b = control_flags(shuffled, DAY, 0.1)
    assert (pd.Series(b, index=shuffled.index).sort_index().to_numpy() == a).all()
    # the same leads stay control next week, and a larger share keeps the smaller share's leads
    assert (control_flags(guids, date(2024, 1, 14), 0.1) == a).all()
    wider = control_flags(guids, DAY, 0.2)
    assert (wider[a == 1] == 1).all() and wider.sum() > a.sum()
    assert control_flags(guids, DAY, 0.0).sum() == 0


def test_select_leads_point_in_time() -> None:
    as_of = pd.Timestamp("2024-01-07")
    leads = pd.DataFrame(
        {
            "person_guid": pd.array(["a", "b", "c", "d", "e", "f", "g"], dtype="string"),
            "origin_date": pd.to_datetime(
                ["2023-12-01", "2022-01-01", "2023-12-01", "2023-12-01", "2023-12-01", "2024-01-08", "2023-12-01"]
            ).astype("datetime64[us]"),
            "application_created": pd.to_datetime([None, None, "2024-01-01", "2024-01-09", None, None, None]).astype(
                "datetime64[us]"
            ),
            "is_test": [False, False, False, False, True, False, False],
        }
    )
    features = pd.DataFrame(
        {
            "person_guid": pd.array(["a", "b", "c", "d", "e", "f", "g"], dtype="string"),
            "opted_out": [0, 0, 0, 0, 0, 0, 1],
        }
    )
    chosen = select_leads(features, leads, as_of, lookback_days=365)
    # b: too old; c: applied before as_of; d: applied after as_of (still open then); e: test; f: not yet a lead;
    # g: opted out.
    assert chosen["person_guid"].tolist() == ["a", "d"]
    with pytest.raises(SelectionError, match="repeated"):
        select_leads(pd.concat([features, features]), leads, as_of, 365)


def test_safety_floor_and_tier_change() -> None:
    settings = SETTINGS.replace(min_scored_leads=10, max_tier_change_share=0.5)
    scores = pd.DataFrame({"person_guid": [f"g{i}" for i in range(20)], "lead_tier": ["A"] * 10 + ["D"] * 10})
    with pytest.raises(DeliverySafetyError, match="only 5 leads were scored, below the floor of 10"):
        check_delivery_safety(scores.head(5), None, settings)
    assert check_delivery_safety(scores, None, settings).common == 0
    previous = scores.assign(lead_tier=["A"] * 4 + ["D"] * 16)  # 6 of 20 changed: 30 %
    report = check_delivery_safety(scores, previous, settings)
    assert (report.common, report.tier_changed) == (20, 6)
    flipped = scores.assign(lead_tier=["D"] * 10 + ["A"] * 10)
    with pytest.raises(DeliverySafetyError, match="20 of 20 leads scored in both weeks changed tier"):
        check_delivery_safety(scores, flipped, settings)
