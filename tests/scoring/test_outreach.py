"""The week's best contact list (a hand-computed case) and the optional contact_this_week column of the score file."""

from __future__ import annotations

import csv
from datetime import date
from pathlib import Path

import numpy as np
import pytest

from leadscore.scoring.files import write_score_files
from leadscore.scoring.outreach import best_contact_list, contact_flags
from leadscore.scoring.score import score_file_columns, score_leads
from leadscore.settings import Settings, SettingsError, load_settings
from tests.scoring.fakes import DummyModel, make_features

DAY = date(2024, 1, 7)
P = np.array([0.05, 0.5, 0.02, 0.3, 0.1])  # sorted: 0.5, 0.3, 0.1, 0.05, 0.02


def test_hand_computed_best_list() -> None:
    # value 100, cost 8: break-even 0.08; a contact is worth 42, 22, 2, -3, -6 in that order
    free = best_contact_list(P, capacity=10, application_value=100, contact_cost=8)
    assert (free.list_size, free.cutoff, free.limited_by) == (3, 0.1, "break-even")
    assert free.expected_applications == pytest.approx(0.9)
    assert free.expected_net_value == pytest.approx(42 + 22 + 2)
    assert free.break_even == pytest.approx(0.08) and free.leads == 5

    tight = best_contact_list(P, capacity=2, application_value=100, contact_cost=8)
    assert (tight.list_size, tight.cutoff, tight.limited_by) == (2, 0.3, "capacity")
    assert tight.expected_net_value == pytest.approx(64)

    free_calls = best_contact_list(P, capacity=10, application_value=100, contact_cost=0)
    assert (free_calls.list_size, free_calls.limited_by) == (5, "leads")
    none = best_contact_list(P, capacity=10, application_value=100, contact_cost=60)
    assert (none.list_size, none.cutoff, none.expected_net_value) == (0, None, 0.0)

    # a sample standing for a pool twice its size: counts and values double
    sampled = best_contact_list(P, capacity=4, application_value=100, contact_cost=8, weight=2.0)
    assert (sampled.list_size, sampled.cutoff, sampled.leads) == (4, 0.3, 10)
    assert sampled.expected_net_value == pytest.approx(2 * 64)
    with pytest.raises(ValueError, match="probabilities must be in"):
        best_contact_list(np.array([0.2, np.nan]), 1, 100, 8)


def test_flags_mark_the_list_and_skip_ineligible_leads() -> None:
    guids = np.array(["e", "d", "c", "b", "a"], dtype=object)
    eligible = np.array([True, True, True, False, True])  # the 0.3 lead is a control lead
    plan = best_contact_list(P[eligible], capacity=10, application_value=100, contact_cost=8)
    assert contact_flags(P, guids, eligible, plan).tolist() == [0, 1, 0, 0, 1]


def test_score_file_gains_contact_column_only_when_on(tmp_path: Path) -> None:
    features = make_features(400, seed=3)
    off = score_leads(DummyModel(), features, "7", DAY, Settings())
    assert list(off.columns) == [*score_file_columns(30), "control"]
    manifest = write_score_files(off, tmp_path / "off", DAY, 10_000, 5_000_000)
    assert list(manifest.columns) == score_file_columns(30)  # the contract, untouched

    on_settings = Settings(contact_flag=True, counselor_capacity=25, application_value=100, contact_cost=1)
    on = score_leads(DummyModel(), features, "7", DAY, on_settings)
    assert int(on["contact_this_week"].sum()) == 25  # capacity binds: the dummy model's leads are above 1 %
    top = on.sort_values(["p_apply_30d"], ascending=False).head(20)
    assert (top["contact_this_week"] == 1).all()
    manifest = write_score_files(on, tmp_path / "on", DAY, 10_000, 5_000_000)
    assert list(manifest.columns) == [*score_file_columns(30), "contact_this_week"]
    with manifest.path(manifest.files[0].name).open(newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    assert sum(r["contact_this_week"] == "1" for r in rows) == 25
    assert {r["contact_this_week"] for r in rows} == {"0", "1"}

    controlled = score_leads(DummyModel(), features, "7", DAY, on_settings.replace(control_share=0.3))
    assert not ((controlled["control"] == 1) & (controlled["contact_this_week"] == 1)).any()
    assert int(controlled["contact_this_week"].sum()) == 25


def test_contact_settings_from_the_environment() -> None:
    s = load_settings({"LEADSCORE_CONTACT_FLAG": "true", "LEADSCORE_COUNSELOR_CAPACITY": "80"})
    assert s.contact_flag is True and s.counselor_capacity == 80
    assert load_settings({}).contact_flag is False
    with pytest.raises(SettingsError, match="LEADSCORE_CONTACT_FLAG"):
        load_settings({"LEADSCORE_CONTACT_FLAG": "maybe"})
    with pytest.raises(SettingsError, match="LEADSCORE_APPLICATION_VALUE"):
        load_settings({"LEADSCORE_APPLICATION_VALUE": "0"})
