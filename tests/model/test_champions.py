"""The rule that picks a week's champion from the alias history (pure: no MLflow)."""

from __future__ import annotations

from datetime import date, datetime

import pytest

from leadscore.model import champions
from leadscore.model.champions import AliasEvent, effective_from, resolve


def event(version: str, promoted: str, effective: str, as_of: str = "") -> AliasEvent:
    return AliasEvent(version=version, promoted_at=promoted, effective_from=effective, as_of=as_of, reason="gate")


def test_a_promotion_takes_effect_from_its_training_date_or_after_the_last_scored_week():
    as_of = datetime(2026, 11, 2)
    assert effective_from(as_of, None) == as_of
    assert effective_from(as_of, date(2026, 10, 26)) == as_of  # older scored weeks do not matter
    # trained as of 11-02 but promoted after the week ending 11-09 was written: that week keeps its file
    assert effective_from(as_of, date(2026, 11, 9)) == datetime(2026, 11, 10)
    assert effective_from(None, None) == datetime.min


def test_each_week_gets_the_version_that_held_the_alias_for_it():
    history = [
        event("1", "2026-11-03T04:00:00", "2026-11-02T00:00:00"),
        event("2", "2026-11-10T04:00:00", "2026-11-10T00:00:00"),  # week 11-09 was already scored
        event("1", "2026-11-20T09:00:00", "2026-11-17T00:00:00"),  # a roll-back after week 11-16
    ]
    week = {d: resolve(history, datetime(2026, 11, d), "1", "m").version for d in (2, 9, 16, 23)}
    assert week == {2: "1", 9: "1", 16: "2", 23: "1"}


def test_a_week_before_the_first_champion_fails_naming_what_to_do():
    history = [event("1", "2026-11-03T04:00:00", "2026-11-02T00:00:00", as_of="2026-11-02T00:00:00")]
    with pytest.raises(champions.NoChampionForWeekError, match=r"week ending 2026-10-26.*from 2026-11-02.*train"):
        resolve(history, datetime(2026, 10, 26), "1", "lead_propensity")


def test_an_alias_moved_outside_leadscore_or_without_history_is_refused():
    history = [event("1", "2026-11-03T04:00:00", "2026-11-02T00:00:00")]
    with pytest.raises(champions.ChampionHistoryError, match=r"moved outside LeadScore.*champion --set"):
        resolve(history, datetime(2026, 11, 9), "3", "m")
    with pytest.raises(champions.ChampionHistoryError, match="no alias history"):
        resolve([], datetime(2026, 11, 9), "1", "m")
    with pytest.raises(champions.NoChampionError, match="run lead_training"):
        resolve([], datetime(2026, 11, 9), None, "m")


def test_history_tags_round_trip_in_promotion_order():
    a = event("2", "2026-11-10T04:00:00.000001", "2026-11-10T00:00:00")
    b = event("1", "2026-11-03T04:00:00", "2026-11-02T00:00:00")
    tags = {a.tag_key: a.to_json(), b.tag_key: b.to_json(), "owner": "admissions"}
    assert champions.parse_history(tags) == [b, a]
    with pytest.raises(champions.ChampionHistoryError, match="not an alias event"):
        champions.parse_history({champions.TAG_PREFIX + "x": "{}"})
