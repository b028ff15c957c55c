"""Cleaning of validated rows: source labels, test records, duplicates, latest versions, no personal fields."""

from __future__ import annotations

import pandas as pd
import pytest

from leadscore.data.clean import (
    SOURCE_LABELS,
    clean_interactions,
    clean_leads,
    is_test_tagged,
    merge_leads,
    normalize_source,
    unseen_sources,
)
from leadscore.data.tables import INTERACTION_COLUMNS, LEAD_COLUMNS
from leadscore.data.validate import validate
from leadscore.slate.queries import INTERACTIONS, LEADS
from tests.data.test_validate import AS_OF, G, interaction_rows, lead_rows


def valid_leads(**overrides: list) -> pd.DataFrame:
    n = len(next(iter(overrides.values()))) if overrides else 3
    result = validate(LEADS, lead_rows(n, **overrides), AS_OF)
    assert result.quarantined.empty
    return result.valid


@pytest.mark.parametrize(
    ("label", "canonical"),
    [
        ("Source", "Source"),
        ("  SOURCE ", "Source"),
        ("Ad-Hoc Data Load", "Ad-Hoc Data Load"),
        ("Ad Hoc Data Load", "Ad-Hoc Data Load"),
        ("adhoc data load", "Ad-Hoc Data Load"),
        ("ad-hoc  data   load ", "Ad-Hoc Data Load"),
        ("vendor lead", "Vendor Lead"),
        ("Event  Registration", "Event Registration"),
        ("campus visit", "Campus Visit"),
        ("Biology Inquiry", "Inquiry Form"),
        ("College of Engineering  inquiry", "Inquiry Form"),
        ("Inquiry Form", "Inquiry Form"),
        ("  radio   advert ", "Radio Advert"),
    ],
)
def test_normalize_source(label: str, canonical: str) -> None:
    assert normalize_source(pd.Series([label])).tolist() == [canonical]


def test_normalize_source_keeps_na_and_counts_unseen() -> None:
    out = normalize_source(pd.Series(["Source", None, "radio advert", "RADIO ADVERT", "tiktok"]))
    assert pd.isna(out.iloc[1])
    assert unseen_sources(out) == {"Radio Advert": 2, "Tiktok": 1}
    assert unseen_sources(normalize_source(pd.Series(list(SOURCE_LABELS)))) == {}


def test_test_tag_detection_is_per_tag() -> None:
    tags = pd.Series(["test", "vip, TEST", "Test;other", "contest", "testing", None, " test "])
    assert is_test_tagged(tags).tolist() == [True, True, True, False, False, False, True]


def test_clean_leads_contract_and_no_personal_fields() -> None:
    out, stats = clean_leads(valid_leads(origin_source=["Biology Inquiry", "ad hoc data load", "Source"]))
    assert list(out.columns) == list(LEAD_COLUMNS)
    assert {c: str(t) for c, t in out.dtypes.items()} == {
        c: str(pd.Series([], dtype=t).dtype) for c, t in LEAD_COLUMNS.items()
    }
    assert not {"first_name", "last_name", "email"} & set(out.columns)
    assert out["source"].tolist() == ["Inquiry Form", "Ad-Hoc Data Load", "Source"]
    assert out["person_guid"].is_monotonic_increasing and not out["is_test"].any()
    assert stats.rows_in == 3 and stats.rows_out == 3 and stats.duplicates == stats.test_dropped == 0


def test_test_tagged_leads_are_dropped_and_counted() -> None:
    out, stats = clean_leads(valid_leads(tags=[None, "vip,test", "Test"], person_guid=G[:3]))
    assert out["person_guid"].tolist() == [G[0]]
    assert stats.test_dropped == 2 and stats.rows_out == 1


def test_exact_duplicates_are_dropped_and_counted() -> None:
    valid = valid_leads(person_guid=[G[0], G[1], G[0], G[0]], ref=["1", "2", "1", "1"], first_name=["A", "B", "A", "Z"])
    out, stats = clean_leads(valid)
    # Rows 0, 2 and 3 are identical once the personal first_name is gone.
    assert out["person_guid"].tolist() == [G[0], G[1]]
    assert stats.duplicates == 2 and stats.superseded == 0


def test_latest_version_of_a_changed_lead_is_kept() -> None:
    valid = valid_leads(
        person_guid=[G[0], G[0], G[1]],
        updated=["2024-03-09T00:00:00", "2024-03-01T10:00:00", "2024-03-01T10:00:00"],
        application_created=["2024-03-08T12:00:00", None, None],
    )
    out, stats = clean_leads(valid)
    assert out["person_guid"].tolist() == [G[0], G[1]]
    assert out["application_created"].iloc[0] == pd.Timestamp("2024-03-08 12:00")
    assert out["updated"].iloc[0] == pd.Timestamp("2024-03-09")
    assert stats.superseded == 1 and stats.duplicates == 0


def test_person_whose_latest_version_is_test_tagged_is_dropped() -> None:
    valid = valid_leads(
        person_guid=[G[0], G[0]], updated=["2024-03-01T10:00:00", "2024-03-02T10:00:00"], tags=[None, "test"]
    )
    out, stats = clean_leads(valid)
    assert out.empty and stats.test_dropped == 1 and stats.superseded == 1


def test_clean_interactions_dedups_by_guid_and_sorts() -> None:
    raw = interaction_rows(4, interaction_guid=[G[3], G[1], G[3], G[2]], kind=["ping", "email_open", "ping", "ping"])
    valid = validate(INTERACTIONS, raw, AS_OF).valid
    out, stats = clean_interactions(valid)
    assert list(out.columns) == list(INTERACTION_COLUMNS)
    assert out["interaction_guid"].tolist() == [G[1], G[2], G[3]]
    assert stats.duplicates == 1 and stats.rows_out == 3
    assert str(out["occurred"].dtype) == "datetime64[us]"


def test_merge_leads_keeps_latest_and_newer_wins_ties() -> None:
    older, _ = clean_leads(
        valid_leads(person_guid=[G[0], G[1]], updated=["2024-03-05T00:00:00", "2024-03-01T00:00:00"])
    )
    newer, _ = clean_leads(
        valid_leads(
            person_guid=[G[0], G[1], G[2]],
            updated=["2024-03-02T00:00:00", "2024-03-01T00:00:00", "2024-03-03T00:00:00"],
            college_of_interest=["Newer", "Newer", "Newer"],
        )
    )
    merged = merge_leads(older, newer)
    assert merged["person_guid"].tolist() == [G[0], G[1], G[2]]
    # G0: the older table's version is later; G1: a tie, the newer table wins; G2: only in newer.
    assert merged["college"].tolist() == ["Arts", "Newer", "Newer"]
    assert list(merged.columns) == list(LEAD_COLUMNS)
