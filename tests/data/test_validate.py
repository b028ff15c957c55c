"""Schema validation and quarantine of raw Slate answers (hand-built frames of strings)."""

from __future__ import annotations

import pandas as pd
import pytest

from leadscore.data.validate import (
    QuarantineLimitError,
    check_quarantine_share,
    parse_datetime,
    parse_int,
    validate,
)
from leadscore.slate.queries import INTERACTIONS, LEADS

G = [f"abcdef01-2345-6789-abcd-ef01234567{i:02x}" for i in range(256)]
AS_OF = pd.Timestamp("2026-01-01")


def lead_rows(n: int, **overrides: list) -> pd.DataFrame:
    """``n`` valid raw lead rows (strings), with some columns overridden."""
    data = {
        "person_guid": G[:n],
        "ref": [str(1000 + i) for i in range(n)],
        "first_name": ["Ada"] * n,
        "last_name": ["Lovelace"] * n,
        "email": [f"p{i}@example.org" for i in range(n)],
        "origin_date": ["2024-03-01T10:00:00"] * n,
        "origin_source": ["Source"] * n,
        "college_of_interest": ["Arts"] * n,
        "application_created": [None] * n,
        "tags": [None] * n,
        "updated": ["2024-03-01T10:00:00"] * n,
    }
    data.update(overrides)
    return pd.DataFrame(data, dtype="str")


def interaction_rows(n: int, **overrides: list) -> pd.DataFrame:
    data = {
        "interaction_guid": G[:n],
        "person_guid": G[100 : 100 + n],
        "kind": ["email_sent"] * n,
        "detail": ["Fall mailing"] * n,
        "occurred": ["2024-03-01T10:00:00"] * n,
    }
    data.update(overrides)
    return pd.DataFrame(data, dtype="str")


def reasons(result) -> list[tuple[str, str]]:
    return list(zip(result.quarantined["person_guid"], result.quarantined["reason"], strict=True))


def test_valid_rows_are_typed_and_none_quarantined() -> None:
    result = validate(LEADS, lead_rows(3), AS_OF)
    assert len(result.valid) == 3 and result.quarantined.empty and result.counts_by_reason == {}
    assert str(result.valid["origin_date"].dtype) == "datetime64[us]"
    assert str(result.valid["ref"].dtype) == "Int64"
    assert result.valid["ref"].tolist() == [1000, 1001, 1002]
    assert result.valid["person_guid"].tolist() == G[:3]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2021-03-04T05:06:07", "2021-03-04 05:06:07"),
        ("2021-03-04 05:06:07", "2021-03-04 05:06:07"),
        ("2021-03-04T05:06:07.123", "2021-03-04 05:06:07.123"),
        ("2021-03-04", "2021-03-04 00:00:00"),
        ("03/04/2021 05:06", "2021-03-04 05:06:00"),
        ("3/4/2021 5:06 PM", "2021-03-04 17:06:00"),
        ("03/04/2021", "2021-03-04 00:00:00"),
        ("  2021-03-04T05:06:07 ", "2021-03-04 05:06:07"),
    ],
)
def test_each_date_format_parses(text: str, expected: str) -> None:
    parsed, unparseable, impossible = parse_datetime(pd.Series([text], dtype="str"))
    assert parsed.iloc[0] == pd.Timestamp(expected)
    assert not unparseable.iloc[0] and not impossible.iloc[0]


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("2021-02-30T10:00:00", "impossible_date"),
        ("0000-00-00", "impossible_date"),
        ("2101-01-01", "impossible_date"),
        ("1989-12-31T23:59:59", "impossible_date"),
        ("13/01/2021 10:00", "impossible_date"),
        ("2099-01-01T00:00:00", "impossible_date"),  # after the window end (not_after)
        ("2026-01-01T00:00:01", "impossible_date"),  # one second after it: no slack, stamps are UTC now
        ("2021-03-04T05:06:07+14:30", "impossible_date"),  # no zone is that far from UTC
        ("2021-03-04T05:06:07+05:60", "impossible_date"),
        ("2021-03-04T05:06:07.12345678", "unparseable_date"),  # 8 fractional digits
        ("2021-03-04+05:00", "unparseable_date"),  # an offset needs a time
        ("next tuesday", "unparseable_date"),
        ("2021/03/04", "unparseable_date"),
    ],
)
def test_bad_dates_are_quarantined_with_reason(text: str, reason: str) -> None:
    raw = lead_rows(2, origin_date=["2024-03-01T10:00:00", text])
    result = validate(LEADS, raw, AS_OF)
    assert reasons(result) == [(G[1], reason)]
    assert result.quarantined["column"].tolist() == ["origin_date"]
    assert result.quarantined["origin_date"].tolist() == [text]  # the raw string is kept for diagnosis
    assert result.valid["person_guid"].tolist() == [G[0]]


@pytest.mark.parametrize(
    ("text", "utc"),
    [
        ("2026-06-01T12:00:00Z", "2026-06-01 12:00:00"),
        ("2026-06-01T12:00:00z", "2026-06-01 12:00:00"),
        ("2026-06-01T12:00:00.1Z", "2026-06-01 12:00:00.1"),
        ("2026-06-01T12:00:00.1234567+02:00", "2026-06-01 10:00:00.123456"),  # the 7th digit is truncated
        ("2026-06-01T12:00:00-05:00", "2026-06-01 17:00:00"),
        ("2026-06-01T12:00:00-0530", "2026-06-01 17:30:00"),
        ("2026-06-01 12:00:00.0000000 +00:00", "2026-06-01 12:00:00"),  # SQL Server's datetimeoffset text
        ("2026-06-01T23:30:00-03:00", "2026-06-02 02:30:00"),  # the UTC day differs from the written one
        ("2026-06-01T12:00", "2026-06-01 16:00:00"),  # naive: New York wall time (EDT)
        ("2026-01-15T12:00:00.5", "2026-01-15 17:00:00.5"),  # naive in winter (EST)
        ("06/01/2026 12:00 PM", "2026-06-01 16:00:00"),
        ("2026-11-01T01:30:00", "2026-11-01 05:30:00"),  # repeated hour: the first occurrence (EDT)
        ("2026-11-01T02:00:00", "2026-11-01 07:00:00"),
        ("2026-03-08T02:30:00", "2026-03-08 07:00:00"),  # skipped hour: shifted forward to 03:00 EDT
        ("2026-03-08T03:00:00", "2026-03-08 07:00:00"),
    ],
)
def test_offsets_fractions_and_the_instance_zone_give_utc(text: str, utc: str) -> None:
    parsed, unparseable, impossible = parse_datetime(pd.Series([text], dtype="str"), timezone="America/New_York")
    assert parsed.iloc[0] == pd.Timestamp(utc)
    assert not unparseable.iloc[0] and not impossible.iloc[0]


def test_naive_stamps_keep_their_order_across_dst_changes() -> None:
    wall = pd.date_range("2026-10-31T23:00", "2026-11-01T04:00", freq="10min").strftime("%Y-%m-%dT%H:%M:%S")
    parsed, _, _ = parse_datetime(pd.Series(wall, dtype="str"), timezone="America/New_York")
    assert parsed.is_monotonic_increasing and parsed.notna().all()
    spring = pd.date_range("2026-03-08T01:00", "2026-03-08T04:00", freq="10min").strftime("%Y-%m-%dT%H:%M:%S")
    parsed, _, _ = parse_datetime(pd.Series(spring, dtype="str"), timezone="America/New_York")
    assert parsed.is_monotonic_increasing and parsed.notna().all()  # the gap collapses onto 07:00 UTC


def test_window_end_is_compared_in_utc() -> None:
    # 18:59:59 EST is one second before the window's end of 2026-11-23T00:00Z; 19:00:00 EST is the end itself
    raw = lead_rows(2, updated=["2026-11-22T18:59:59", "2026-11-22T19:00:01"])
    result = validate(LEADS, raw, pd.Timestamp("2026-11-23"), timezone="America/New_York")
    assert result.valid["updated"].tolist() == [pd.Timestamp("2026-11-22T23:59:59")]
    assert reasons(result) == [(G[1], "impossible_date")]


def test_include_null_values_empty_strings_are_null() -> None:
    raw = lead_rows(3, college_of_interest=["", " ", None], tags=["", None, "vip"], origin_source=["Source", "", "x"])
    result = validate(LEADS, raw, AS_OF)
    assert reasons(result) == [(G[1], "missing_origin_source")]
    assert result.valid["college_of_interest"].isna().all() and result.valid["tags"].isna().tolist() == [True, False]


def test_date_columns_are_calendar_days_without_a_zone() -> None:
    from leadscore.data.validate import _parse_column
    from leadscore.slate.queries import Column

    parsed, _ = _parse_column(Column("d", "date", False), pd.Series(["2026-06-01"]), None, "America/New_York")
    assert parsed.iloc[0] == pd.Timestamp("2026-06-01")


def test_bad_optional_date_is_quarantined_not_nulled() -> None:
    raw = lead_rows(2, application_created=[None, "2021-02-30"])
    result = validate(LEADS, raw, AS_OF)
    assert reasons(result) == [(G[1], "impossible_date")]
    assert result.quarantined["column"].tolist() == ["application_created"]


@pytest.mark.parametrize(
    ("text", "value"),
    [(" 00123", 123), ("1,234", 1234), ("1234.0", 1234), ("1234.00", 1234), ("+7", 7), ("12 345", 12345)],
)
def test_odd_numeric_strings_are_cleaned(text: str, value: int) -> None:
    parsed, bad = parse_int(pd.Series([text], dtype="str"))
    assert parsed.iloc[0] == value and not bad.iloc[0]


@pytest.mark.parametrize("text", ["12.5", "1,23", "abc", "1e3", "99999999999999999999"])
def test_non_integers_are_quarantined(text: str) -> None:
    result = validate(LEADS, lead_rows(2, ref=["5", text]), AS_OF)
    assert reasons(result) == [(G[1], "invalid_int")]


@pytest.mark.parametrize("column", ["person_guid", "origin_date", "origin_source", "updated"])
@pytest.mark.parametrize("blank", [None, "", "   "])
def test_missing_required_column_value(column: str, blank: str | None) -> None:
    raw = lead_rows(3)
    raw.loc[1, column] = blank
    result = validate(LEADS, raw, AS_OF)
    assert result.quarantined["reason"].tolist() == [f"missing_{column}"]
    assert result.counts_by_reason == {f"missing_{column}": 1}
    assert len(result.valid) == 2


def test_required_column_absent_from_answer_quarantines_every_row() -> None:
    raw = lead_rows(2).drop(columns=["origin_source"])
    result = validate(LEADS, raw, AS_OF)
    assert result.counts_by_reason == {"missing_origin_source": 2} and result.valid.empty


def test_guids_are_trimmed_lowered_and_checked() -> None:
    raw = lead_rows(3, person_guid=[f"  {{{G[0].upper()}}} ", "not-a-guid", G[2]])
    result = validate(LEADS, raw, AS_OF)
    assert result.valid["person_guid"].tolist() == [G[0], G[2]]
    assert result.quarantined["reason"].tolist() == ["invalid_guid"]


def test_varchar_is_stripped_and_control_characters_removed() -> None:
    raw = lead_rows(2, college_of_interest=["  Arts\x00\t", "\x07 "])
    result = validate(LEADS, raw, AS_OF)
    assert result.valid["college_of_interest"].iloc[0] == "Arts"
    assert pd.isna(result.valid["college_of_interest"].iloc[1])


def test_unknown_interaction_kind() -> None:
    raw = interaction_rows(3, kind=["email_sent", "sms_sent", " EMAIL_OPEN "])
    result = validate(INTERACTIONS, raw, AS_OF)
    assert result.quarantined["reason"].tolist() == ["unknown_kind"]
    assert result.quarantined["kind"].tolist() == ["sms_sent"]
    assert result.valid["kind"].tolist() == ["email_sent", "email_open"]


def test_first_failure_wins_and_each_row_is_in_exactly_one_output() -> None:
    raw = lead_rows(
        4,
        person_guid=[G[0], None, G[2], G[3]],
        origin_date=["bad", "bad", "2024-01-01", "2021-02-30"],
        ref=["x", "1", "2", "3"],
    )
    result = validate(LEADS, raw, AS_OF)
    assert len(result.valid) + len(result.quarantined) == result.rows_in == 4
    # Row 0 breaks ref and origin_date, row 1 person_guid and origin_date: the first column in contract order wins.
    assert result.quarantined["reason"].tolist() == ["invalid_int", "missing_person_guid", "impossible_date"]
    assert result.quarantined["column"].tolist() == ["ref", "person_guid", "origin_date"]
    assert result.valid["person_guid"].tolist() == [G[2]]


def test_extra_columns_are_dropped_and_counted() -> None:
    raw = lead_rows(3).assign(legacy_source_code=["A", None, "C"], nickname=[None, None, None])
    result = validate(LEADS, raw, AS_OF)
    assert result.extra_columns == {"legacy_source_code": 2, "nickname": 0}
    assert "legacy_source_code" not in result.valid.columns and result.quarantined.empty


def test_quarantine_never_holds_personal_columns() -> None:
    raw = lead_rows(2, origin_date=["bad", "2024-01-01"])
    result = validate(LEADS, raw, AS_OF)
    assert len(result.quarantined) == 1
    assert not {"first_name", "last_name", "email"} & set(result.quarantined.columns)
    assert {"reason", "column", "person_guid", "origin_date"} <= set(result.quarantined.columns)


def test_empty_answer() -> None:
    result = validate(LEADS, pd.DataFrame({c: pd.Series([], dtype="str") for c in LEADS.column_names}), AS_OF)
    assert result.rows_in == 0 and result.valid.empty and result.quarantined_share == 0.0
    check_quarantine_share(result, 0.0, LEADS)  # nothing quarantined: no error even at a zero bound


def test_quarantine_share_bound(tmp_path) -> None:
    raw = lead_rows(100, origin_date=["bad"] * 3 + ["2024-01-01"] * 97)
    result = validate(LEADS, raw, AS_OF)
    assert result.quarantined_share == pytest.approx(0.03)
    check_quarantine_share(result, 0.05, LEADS)
    where = tmp_path / "leads.csv"
    with pytest.raises(QuarantineLimitError) as info:
        check_quarantine_share(result, 0.02, LEADS, where)
    message = str(info.value)
    for part in ("'leads'", "3 of 100", "3.00%", "2.00%", "unparseable_date: 3", str(where), "re-run"):
        assert part in message


def test_large_frame_is_handled_in_one_vectorized_pass() -> None:
    n = 100_000
    raw = pd.DataFrame(
        {
            "interaction_guid": [f"{i:08x}-0000-4000-8000-000000000000" for i in range(n)],
            "person_guid": [G[0]] * n,
            "kind": ["ping"] * n,
            "detail": ["https://x.edu/apply"] * n,
            "occurred": ["03/04/2024 10:00" if i % 2 else "2024-03-04T10:00:00" for i in range(n)],
        },
        dtype="str",
    )
    raw.loc[::1000, "occurred"] = "2024-02-30T10:00:00"
    result = validate(INTERACTIONS, raw, AS_OF)
    assert result.counts_by_reason == {"impossible_date": n // 1000}
    assert (result.valid["occurred"] == pd.Timestamp("2024-03-04 10:00")).all()


def test_frame_concatenated_from_pages_is_validated_whole() -> None:
    pages = [lead_rows(3), lead_rows(2, person_guid=G[10:12], origin_date=["01/02/2024 09:30", "2024-02-30"])]
    raw = pd.concat(pages, ignore_index=True)  # several arrow chunks per column
    result = validate(LEADS, raw, AS_OF)
    assert len(result.valid) == 4 and result.counts_by_reason == {"impossible_date": 1}
    assert result.valid["origin_date"].iloc[3] == pd.Timestamp("2024-01-02 09:30")
