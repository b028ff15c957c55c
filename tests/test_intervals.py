"""Weekly intervals: scheduled, manual and backfill runs process the right week."""

from __future__ import annotations

import itertools
from datetime import UTC, date, datetime

import pytest

from leadscore.intervals import Interval, resolve_interval, week_ending_on_or_before, week_starting, weeks_between


def test_scheduled_run_gets_exactly_its_interval():
    start, end = datetime(2026, 11, 16, tzinfo=UTC), datetime(2026, 11, 23, tzinfo=UTC)
    iv = resolve_interval(start, end, run_after=datetime(2026, 11, 23, 0, 5, tzinfo=UTC))
    assert iv == Interval(datetime(2026, 11, 16), datetime(2026, 11, 23))
    assert iv.key == "20261116_20261123" and iv.end_date == date(2026, 11, 23)


def test_manual_run_without_interval_takes_the_week_that_ended_last():
    iv = resolve_interval(None, None, run_after=datetime(2026, 11, 24, 15, 0, tzinfo=UTC))
    assert iv == Interval(datetime(2026, 11, 16), datetime(2026, 11, 23))
    # exactly on a Monday midnight: the week that ends at that moment
    assert week_ending_on_or_before(datetime(2026, 11, 23)).end == datetime(2026, 11, 23)


def test_zero_length_interval_falls_back_to_run_after():
    moment = datetime(2026, 12, 1, 3, tzinfo=UTC)
    assert resolve_interval(moment, moment, run_after=moment).end == datetime(2026, 11, 30)


def test_as_of_override_wins_and_bad_value_is_named():
    iv = resolve_interval(datetime(2026, 1, 5), datetime(2026, 1, 12), None, as_of_override="2026-03-04")
    assert iv.end == datetime(2026, 3, 2)
    with pytest.raises(ValueError, match="as_of='March'"):
        resolve_interval(None, None, None, as_of_override="March")
    with pytest.raises(ValueError, match="no data interval"):
        resolve_interval(None, None, None)


def test_backfill_weeks_in_order_and_complete():
    weeks = weeks_between(date(2026, 10, 28), date(2026, 11, 16))
    assert [w.start.date() for w in weeks] == [
        date(2026, 10, 26),
        date(2026, 11, 2),
        date(2026, 11, 9),
        date(2026, 11, 16),
    ]
    assert all(a.end == b.start for a, b in itertools.pairwise(weeks))
    assert week_starting(date(2026, 11, 18)).start == datetime(2026, 11, 16)
    with pytest.raises(ValueError, match="empty"):
        weeks_between(date(2026, 11, 16), date(2026, 11, 1))
