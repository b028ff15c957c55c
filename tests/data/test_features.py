"""Point-in-time features: hand-computed cases, window edges, open-lead selection and a naive-reference property."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from leadscore.data.features import (
    FeatureInputError,
    features_as_of,
    features_at,
    open_leads_mask,
    ping_page_kind,
)
from leadscore.data.tables import FEATURE_COLUMNS, FEATURE_FLAGS, FEATURE_NUMERIC

T0 = pd.Timestamp("2024-03-01 00:00:00")
SEC = pd.Timedelta(seconds=1)
DAY = pd.Timedelta(days=1)


def make_leads(rows: list[dict]) -> pd.DataFrame:
    """Cleaned leads (data.tables.LEAD_COLUMNS) from short dicts."""
    base = {"college": None, "application_created": None, "is_test": False, "source": "Source"}
    full = [{**base, **r} for r in rows]
    return pd.DataFrame(
        {
            "person_guid": pd.Series([r["person_guid"] for r in full], dtype="string"),
            "ref": pd.Series(range(len(full)), dtype="Int64"),
            "origin_date": pd.Series(pd.to_datetime([r["origin_date"] for r in full]), dtype="datetime64[us]"),
            "source": pd.Series([r["source"] for r in full], dtype="string"),
            "college": pd.Series([r["college"] for r in full], dtype="string"),
            "application_created": pd.Series(
                pd.to_datetime([r["application_created"] for r in full]), dtype="datetime64[us]"
            ),
            "is_test": pd.Series([r["is_test"] for r in full], dtype="bool"),
            "updated": pd.Series(pd.to_datetime([r["origin_date"] for r in full]), dtype="datetime64[us]"),
        }
    )


def make_interactions(rows: list[tuple[str, str, str | None, object]]) -> pd.DataFrame:
    """Cleaned interactions (data.tables.INTERACTION_COLUMNS) from (person, kind, detail, occurred)."""
    return pd.DataFrame(
        {
            "interaction_guid": pd.Series([f"i{i}" for i in range(len(rows))], dtype="string"),
            "person_guid": pd.Series([r[0] for r in rows], dtype="string"),
            "kind": pd.Series([r[1] for r in rows], dtype="string"),
            "detail": pd.Series([r[2] for r in rows], dtype="string"),
            "occurred": pd.Series(pd.to_datetime([r[3] for r in rows]), dtype="datetime64[us]"),
        }
    )


def one(leads: pd.DataFrame, inter: pd.DataFrame, guid: str, as_of: pd.Timestamp) -> pd.Series:
    points = pd.DataFrame({"person_guid": [guid], "as_of": pd.Series([as_of], dtype="datetime64[us]")})
    return features_at(points, leads, inter).iloc[0]


def test_strictly_before_as_of():
    leads = make_leads([{"person_guid": "a", "origin_date": T0 - 10 * DAY}])
    as_of = T0
    inter = make_interactions(
        [
            ("a", "email_sent", "m", as_of - SEC),  # counts
            ("a", "email_sent", "m", as_of),  # exactly at as_of: not before
            ("a", "email_sent", "m", as_of + SEC),  # after: never
            ("a", "ping", "/apply", as_of + SEC),
            ("a", "email_optout", "m", as_of + SEC),
        ]
    )
    row = one(leads, inter, "a", as_of)
    assert row["email_sent"] == 1
    assert row["pings"] == 0 and row["distinct_urls"] == 0 and row["ping_apply"] == 0
    assert row["opted_out"] == 0
    assert row["never_engaged"] == 1
    # one second later the event at as_of counts, the one a second after still does not
    assert one(leads, inter, "a", as_of + SEC)["email_sent"] == 2


def test_every_feature_hand_computed():
    origin = T0 - 40 * DAY
    leads = make_leads(
        [
            {"person_guid": "a", "origin_date": origin, "source": "Inquiry Form", "college": "Nursing"},
            {"person_guid": "other", "origin_date": origin, "college": "   "},
        ]
    )
    inter = make_interactions(
        [
            ("a", "email_sent", "m1", origin + 1 * DAY),  # outside the 30-day window
            ("a", "email_sent", "m2", origin + 20 * DAY),
            ("a", "email_sent", "m3", origin + 30 * DAY),
            ("a", "email_sent", "m4", origin + 35 * DAY),
            ("a", "email_open", "m1", origin + 2 * DAY),  # outside the window
            ("a", "email_open", "m2", origin + 21 * DAY),
            ("a", "email_click", "m2", origin + 21 * DAY),
            ("a", "email_optout", "m4", origin + 36 * DAY),
            ("a", "ping", "https://www.uni.edu/apply/start?utm=1", origin + 3 * DAY),  # outside the window
            ("a", "ping", "https://www.uni.edu/apply/start?utm=1", origin + 22 * DAY),
            ("a", "ping", "/visit/tour", origin + 22 * DAY),
            ("a", "ping", "/financial-aid", origin + 23 * DAY),
            ("a", "ping", "/programs/nursing", origin + 23 * DAY),
            ("a", "ping", "/news/said-something", origin + 24 * DAY),
            ("a", "ping", None, origin + 24 * DAY),
            ("a", "activity", "phone call", origin + 5 * DAY),
            ("a", "activity", " Chat ", origin + 6 * DAY),
            ("a", "activity", "appointment", origin + 7 * DAY),
            ("a", "activity", "email", origin + 8 * DAY),
            ("a", "activity", "walkin", origin + 9 * DAY),
            ("a", "event_registered", "Open House", origin + 10 * DAY),
            ("a", "event_registered", "Webinar", origin + 11 * DAY),
            ("a", "event_attended", "Open House", origin + 25 * DAY),  # the last engagement
            ("a", "event_noshow", "Webinar", origin + 26 * DAY),  # not engagement
            ("a", "email_sent", "m5", origin + 50 * DAY),  # after as_of
            ("other", "email_open", "x", origin + 3 * DAY),  # another person
        ]
    )
    row = one(leads, inter, "a", T0)
    expected = {
        "days_as_lead": 40.0,
        "email_sent": 4.0,
        "email_open": 2.0,
        "email_click": 1.0,
        "email_open_rate": 0.5,
        "email_click_rate": 0.25,
        "email_sent_30d": 3.0,
        "email_open_30d": 1.0,
        "email_click_30d": 1.0,
        "days_since_last_engagement": 15.0,
        "pings": 7.0,
        "pings_30d": 6.0,
        "distinct_urls": 5.0,
        "ping_apply": 2.0,
        "ping_visit": 1.0,
        "ping_aid": 1.0,
        "ping_program": 1.0,
        "activity_appointment": 1.0,
        "activity_chat": 1.0,
        "activity_email": 1.0,
        "activity_phone": 1.0,
        "activity_walkin": 1.0,
        "events_registered": 2.0,
        "events_attended": 1.0,
        "college_missing": 0,
        "no_email_sent": 0,
        "never_engaged": 0,
        "opted_out": 1,
        "source": "Inquiry Form",
        "college": "Nursing",
    }
    assert set(expected) == set(FEATURE_COLUMNS)
    assert {k: row[k] for k in expected} == expected

    other = one(leads, inter, "other", T0)
    assert other["college"] == "Unknown" and other["college_missing"] == 1
    assert other["email_open"] == 1 and other["email_sent"] == 0
    assert other["email_open_rate"] == 0 and other["no_email_sent"] == 1


def test_output_columns_and_dtypes():
    leads = make_leads([{"person_guid": "a", "origin_date": T0 - DAY}])
    out = features_as_of(leads, make_interactions([]), T0)
    assert list(out.columns) == ["person_guid", "as_of", *FEATURE_COLUMNS]
    assert all(out[c].dtype == np.float64 for c in FEATURE_NUMERIC)
    assert all(out[c].dtype == np.int8 for c in FEATURE_FLAGS)
    assert out["source"].dtype == "str" and out["college"].dtype == "str"
    row = out.iloc[0]
    assert row["never_engaged"] == 1 and row["no_email_sent"] == 1
    assert row["days_since_last_engagement"] == row["days_as_lead"] == 1.0


def test_30_day_window_edges():
    leads = make_leads([{"person_guid": "a", "origin_date": T0 - 100 * DAY}])
    start = T0 - 30 * DAY
    inter = make_interactions(
        [
            ("a", "email_sent", "m", start - SEC),  # just outside
            ("a", "email_sent", "m", start),  # first instant inside
            ("a", "ping", "/x", start),
            ("a", "ping", "/x", start - SEC),
            ("a", "email_open", "m", T0 - SEC),  # last instant inside
            ("a", "email_open", "m", T0),  # not before as_of
        ]
    )
    row = one(leads, inter, "a", T0)
    assert (row["email_sent"], row["email_sent_30d"]) == (2, 1)
    assert (row["pings"], row["pings_30d"]) == (2, 1)
    assert (row["email_open"], row["email_open_30d"]) == (1, 1)
    assert row["days_since_last_engagement"] == pytest.approx(1 / 86_400)


def test_distinct_urls_count_first_sightings_before_as_of():
    leads = make_leads([{"person_guid": "a", "origin_date": T0 - 50 * DAY}, {"person_guid": "b", "origin_date": T0}])
    inter = make_interactions(
        [
            ("a", "ping", "/x", T0 - 10 * DAY),
            ("a", "ping", "/x", T0 - 5 * DAY),
            ("a", "ping", "/x", T0 + DAY),
            ("a", "ping", "/y", T0 - 1 * DAY),
            ("a", "ping", "/z", T0 + DAY),  # only after as_of
            ("a", "ping", None, T0 - 2 * DAY),  # no URL
            ("b", "ping", "/z", T0 - 20 * DAY),  # same URL, other person
        ]
    )
    assert one(leads, inter, "a", T0)["distinct_urls"] == 2
    assert one(leads, inter, "a", T0)["pings"] == 4
    assert one(leads, inter, "a", T0 - 6 * DAY)["distinct_urls"] == 1
    assert one(leads, inter, "a", T0 + 2 * DAY)["distinct_urls"] == 3
    assert one(leads, inter, "b", T0)["distinct_urls"] == 1


def test_open_lead_selection():
    leads = make_leads(
        [
            {"person_guid": "open", "origin_date": T0 - DAY},
            {"person_guid": "applied_before", "origin_date": T0 - DAY, "application_created": T0 - SEC},
            {"person_guid": "applied_at", "origin_date": T0 - DAY, "application_created": T0},
            {"person_guid": "applied_after", "origin_date": T0 - DAY, "application_created": T0 + DAY},
            {"person_guid": "test", "origin_date": T0 - DAY, "is_test": True},
            {"person_guid": "origin_at", "origin_date": T0},
            {"person_guid": "not_yet", "origin_date": T0 + DAY},
        ]
    )
    out = features_as_of(leads, make_interactions([]), T0)
    assert list(out["person_guid"]) == ["open", "applied_at", "applied_after"]
    assert (out["as_of"] == T0).all()
    assert open_leads_mask(leads, T0).tolist() == [True, False, True, True, False, False, False]


def test_features_at_with_per_row_dates_equals_features_as_of():
    leads = make_leads([{"person_guid": g, "origin_date": T0 - 60 * DAY} for g in "abc"])
    rng = np.random.default_rng(3)
    rows = [
        (g, k, d, T0 - 60 * DAY + pd.Timedelta(seconds=int(s)))
        for g, k, d, s in zip(
            rng.choice(list("abc"), 300),
            rng.choice(["email_sent", "email_open", "ping", "activity", "event_registered"], 300),
            rng.choice(["/apply", "/visit", "chat", "phone call"], 300),
            rng.integers(0, 60 * 86_400, 300),
            strict=True,
        )
    ]
    inter = make_interactions(rows)
    dates = [T0 - 45 * DAY, T0 - 20 * DAY + SEC, T0 - 3 * DAY, T0]
    points = pd.DataFrame(
        {
            "person_guid": ["c", "a", "b", "a", "c", "b"],
            "as_of": pd.Series([dates[i] for i in (0, 1, 2, 3, 3, 1)], dtype="datetime64[us]"),
        }
    )
    together = features_at(points, leads, inter)
    for i, point in points.iterrows():
        alone = features_as_of(leads, inter, point["as_of"])
        expected = alone.loc[alone["person_guid"] == point["person_guid"]].reset_index(drop=True)
        pd.testing.assert_frame_equal(together.iloc[[i]].reset_index(drop=True), expected)


def test_sub_second_timestamps_are_exact():
    leads = make_leads([{"person_guid": "a", "origin_date": T0 - DAY}])
    ms = pd.Timedelta(milliseconds=1)
    inter = make_interactions([("a", "email_sent", "m", T0 - ms), ("a", "email_sent", "m", T0)])
    assert one(leads, inter, "a", T0)["email_sent"] == 1
    assert one(leads, inter, "a", T0 - ms)["email_sent"] == 0


def test_ping_page_kind():
    urls = pd.Series(
        [
            "https://www.uni.edu/apply/now?x=1",
            "/admissions/visit",
            "/financial-aid/",
            "/programs/nursing",
            "/programs/nursing/apply",  # apply wins over program
            "/news/said",  # 'aid' inside a word is not aid
            "https://apply.uni.edu/portal",  # the host is not the path
            None,
        ]
    )
    assert ping_page_kind(urls).tolist() == ["apply", "visit", "aid", "program", "apply", "other", "other", "other"]


def test_input_errors_are_specific():
    leads = make_leads([{"person_guid": "a", "origin_date": T0 - DAY}])
    with pytest.raises(FeatureInputError, match="unknown kind"):
        features_as_of(leads, make_interactions([("a", "sms", "x", T0 - DAY)]), T0)
    points = pd.DataFrame({"person_guid": ["zz"], "as_of": pd.Series([T0], dtype="datetime64[us]")})
    with pytest.raises(FeatureInputError, match="not in leads"):
        features_at(points, leads, make_interactions([]))
    with pytest.raises(FeatureInputError, match="repeats"):
        features_as_of(pd.concat([leads, leads]), make_interactions([]), T0)
    with pytest.raises(FeatureInputError, match="lacks column"):
        features_as_of(leads, make_interactions([]).drop(columns=["kind"]), T0)


# --- property: the sorted-key implementation equals a naive per-row filter ------------------------------------------

KINDS = ["email_sent", "email_open", "email_click", "email_optout", "ping", "activity", "event_registered",
         "event_attended", "event_noshow", "event_cancelled"]  # fmt: skip
DETAILS = [
    "/apply",
    "/visit",
    "/aid",
    "/programs",
    "/other",
    "phone call",
    "chat",
    "walkin",
    "email",
    "appointment",
    None,
]
ENGAGEMENT = {"email_open", "email_click", "ping", "activity", "event_registered", "event_attended"}


def naive(points: pd.DataFrame, leads: pd.DataFrame, inter: pd.DataFrame) -> pd.DataFrame:
    """Reference: filter every interaction for every point."""
    out = []
    origin = dict(zip(leads["person_guid"], leads["origin_date"], strict=True))
    for p, a in zip(points["person_guid"], points["as_of"], strict=True):
        ev = inter[(inter["person_guid"] == p) & (inter["occurred"] < a)]
        win = ev[ev["occurred"] >= a - 30 * DAY]
        k, kw = ev["kind"], win["kind"]
        pings = ev[k == "ping"]
        page = ping_page_kind(pings["detail"])
        act = ev.loc[k == "activity", "detail"].fillna("").str.strip().str.lower()
        days_as_lead = (a - origin[p]) / DAY
        eng = ev[k.isin(ENGAGEMENT)]
        sent = float((k == "email_sent").sum())
        r = {
            "days_as_lead": days_as_lead,
            "email_sent": sent,
            "email_open": float((k == "email_open").sum()),
            "email_click": float((k == "email_click").sum()),
            "email_sent_30d": float((kw == "email_sent").sum()),
            "email_open_30d": float((kw == "email_open").sum()),
            "email_click_30d": float((kw == "email_click").sum()),
            "days_since_last_engagement": (a - eng["occurred"].max()) / DAY if len(eng) else days_as_lead,
            "pings": float(len(pings)),
            "pings_30d": float((kw == "ping").sum()),
            "distinct_urls": float(pings["detail"].dropna().nunique()),
            "activity_appointment": float((act == "appointment").sum()),
            "activity_chat": float((act == "chat").sum()),
            "activity_email": float((act == "email").sum()),
            "activity_phone": float((act == "phone call").sum()),
            "activity_walkin": float((act == "walkin").sum()),
            "events_registered": float((k == "event_registered").sum()),
            "events_attended": float((k == "event_attended").sum()),
            "no_email_sent": int(sent == 0),
            "never_engaged": int(len(eng) == 0),
            "opted_out": int((k == "email_optout").any()),
        }
        for kind in ("apply", "visit", "aid", "program"):
            r["ping_" + kind] = float((page == kind).sum())
        r["email_open_rate"] = r["email_open"] / sent if sent else 0.0
        r["email_click_rate"] = r["email_click"] / sent if sent else 0.0
        out.append(r)
    return pd.DataFrame(out)


event_st = st.tuples(
    st.sampled_from(["a", "b", "c", "ghost"]),  # "ghost" is not a lead: ignored
    st.sampled_from(KINDS),
    st.sampled_from(DETAILS),
    st.integers(0, 200),  # hours after T0 (coarse, so points often coincide with events)
)
point_st = st.tuples(st.sampled_from(["a", "b", "c"]), st.integers(-10, 210))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(events=st.lists(event_st, max_size=40), pts=st.lists(point_st, min_size=1, max_size=8))
def test_counts_equal_naive_filter(events, pts):
    hour = pd.Timedelta(hours=1)
    leads = make_leads([{"person_guid": g, "origin_date": T0 - 5 * DAY} for g in "abc"])
    inter = make_interactions([(p, k, d, T0 + h * hour) for p, k, d, h in events])
    points = pd.DataFrame(
        {
            "person_guid": [p for p, _ in pts],
            "as_of": pd.Series([T0 + h * hour for _, h in pts], dtype="datetime64[us]"),
        }
    )
    got = features_at(points, leads, inter)
    want = naive(points, leads, inter)
    cols = [c for c in FEATURE_COLUMNS if c not in ("source", "college", "college_missing")]
    pd.testing.assert_frame_equal(
        got[cols].astype("float64"), want[cols].astype("float64"), check_exact=False, rtol=1e-12
    )
