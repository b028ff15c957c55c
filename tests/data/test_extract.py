"""Extraction of data intervals against the sandbox web service: incremental weeks, idempotent re-runs, all or nothing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from leadscore.data.extract import extract_interval
from leadscore.data.store import ExtractStore
from leadscore.data.validate import QuarantineLimitError
from leadscore.settings import Settings
from leadscore.slate.client import SlateClient
from leadscore.slate.errors import SlateTransientError
from leadscore.slate.queries import INTERACTIONS, LEADS
from tests.slate.test_client import FakeSleep, sandbox_config

# Two consecutive weeks just before the sandbox's end (2026-11-23).
W1 = (pd.Timestamp("2026-11-02"), pd.Timestamp("2026-11-09"))
W2 = (pd.Timestamp("2026-11-09"), pd.Timestamp("2026-11-16"))


@pytest.fixture
def env(sandbox: Any, tmp_path: Path) -> tuple[SlateClient, ExtractStore, Settings]:
    settings = Settings(home=tmp_path / "home")
    client = SlateClient(sandbox_config(sandbox, max_retries=1), sleep=FakeSleep())
    return client, ExtractStore.from_settings(settings), settings


def snapshot(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_weekly_extracts_are_incremental_idempotent_and_union_to_a_full_pull(
    sandbox: Any, env: tuple, tmp_path: Path
) -> None:
    client, store, settings = env
    first = extract_interval(client, store, settings, *W1)
    assert first.full_history and first.since is None
    assert all("since" not in e["params"] for e in sandbox.web.request_log())
    assert first.leads.rows_out > 0 and first.interactions.rows_out > 0

    sandbox.web.clear_request_log()
    second = extract_interval(client, store, settings, *W2)
    assert not second.full_history and second.since == "2026-11-09T00:00:00"
    sent = [e["params"] for e in sandbox.web.request_log()]
    assert {(p["since"], p["until"]) for p in sent} == {("2026-11-09T00:00:00", "2026-11-16T00:00:00")}
    week = store.read(INTERACTIONS, *W2)
    assert len(week) == second.new_interactions > 0
    assert week["occurred"].between(W2[0], W2[1], inclusive="left").all()  # only that week's interactions
    assert second.new_leads + second.changed_leads == second.leads.rows_out
    assert store.intervals(LEADS) == [W1, W2] == store.intervals(INTERACTIONS)

    summary = store.read_summary(*W2)
    assert summary["new_interactions"] == second.new_interactions
    assert summary["leads"]["rows_in"] == second.leads.rows_in and "quarantined_by_reason" in summary["leads"]
    assert Path(summary["leads"]["extract_path"]) == store.path(LEADS, *W2)

    # Re-runs replace each interval's files with identical bytes.
    before = {**snapshot(store.root), **snapshot(store.quarantine_dir)}
    assert not extract_interval(client, store, settings, *W2).full_history
    assert extract_interval(client, store, settings, *W1).full_history  # still no earlier extract
    after = {**snapshot(store.root), **snapshot(store.quarantine_dir)}
    assert after == before and len(after) == 8

    full = ExtractStore(tmp_path / "full" / "extracts", tmp_path / "full" / "q", tmp_path / "full" / "dq")
    assert extract_interval(client, full, settings, *W2, full_history=True).full_history
    for query in (LEADS, INTERACTIONS):
        pd.testing.assert_frame_equal(store.read_all(query), full.read_all(query))


def test_failure_of_either_query_stores_nothing(sandbox: Any, env: tuple) -> None:
    client, store, settings = env
    extract_interval(client, store, settings, *W1, full_history=False)
    before = snapshot(settings.home_abs)
    sandbox.web.faults.set("error_503", count=10, query="interactions", retry_after=0)
    with pytest.raises(SlateTransientError, match="interactions"):
        extract_interval(client, store, settings, *W2)
    assert any(e["query"] == "leads" and e["status"] == 200 for e in sandbox.web.request_log())  # leads were fetched
    assert not store.has_interval(LEADS, *W2) and not store.has_interval(INTERACTIONS, *W2)
    sandbox.web.faults.set("error_503", count=10, query="interactions", retry_after=0)
    with pytest.raises(SlateTransientError):
        extract_interval(client, store, settings, *W1, full_history=False)  # a failed re-run keeps the old files
    assert snapshot(settings.home_abs) == before


def test_too_many_quarantined_rows_fail_before_storing(sandbox: Any, env: tuple) -> None:
    client, store, settings = env
    settings = settings.replace(page_size=10)
    interval = (pd.Timestamp("2026-10-01"), pd.Timestamp("2026-11-01"))
    # Ten leads of the second page arrive without origin_date: far above the 2 % bound.
    sandbox.web.faults.set("drop_column", query="leads", page=2, column="origin_date")
    with pytest.raises(QuarantineLimitError) as info:
        extract_interval(client, store, settings, *interval, full_history=False)
    path = store.quarantine_path(LEADS, *interval)
    message = str(info.value)
    quarantined = pd.read_csv(path)
    assert len(quarantined) >= 10 and set(quarantined["reason"]) == {"missing_origin_date"}  # a page + ties
    assert str(path) in message and f"missing_origin_date: {len(quarantined)}" in message and "2.00%" in message
    assert {e["query"] for e in sandbox.web.request_log()} == {"leads"}  # failed before fetching interactions
    assert not {"first_name", "last_name", "email"} & set(quarantined.columns)
    assert store.intervals(LEADS) == [] and store.intervals(INTERACTIONS) == []
    assert not store.summary_path(*interval).exists()
