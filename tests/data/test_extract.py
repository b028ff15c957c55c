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


def test_batched_pull_gives_the_same_files_as_one_batch(sandbox: Any, env: tuple, tmp_path: Path) -> None:
    client, store, settings = env
    settings = settings.replace(page_size=50)
    interval = (pd.Timestamp("2026-10-01"), pd.Timestamp("2026-11-01"))
    one = extract_interval(client, store, settings, *interval, full_history=False, batch_rows=10**9)
    many_store = ExtractStore(tmp_path / "many" / "extracts", tmp_path / "many" / "q", tmp_path / "many" / "dq")
    many = extract_interval(client, many_store, settings, *interval, full_history=False, batch_rows=120)
    assert one.interactions.pages > 10 and many.interactions.rows_out == one.interactions.rows_out > 0
    for query in (LEADS, INTERACTIONS):
        assert many_store.path(query, *interval).read_bytes() == store.path(query, *interval).read_bytes()
        assert (
            many_store.quarantine_path(query, *interval).read_bytes()
            == store.quarantine_path(query, *interval).read_bytes()
        )
    keep = {"seconds", "fetch_seconds", "extract_path", "quarantine_path", "summary_path"}

    def comparable(d: dict) -> dict:
        return {k: comparable(v) if isinstance(v, dict) else v for k, v in d.items() if k not in keep}

    assert comparable(many.as_dict()) == comparable(one.as_dict())
    assert not [p for p in many_store.root.rglob("*") if p.name.endswith(".tmp")]


def test_failure_in_a_later_batch_leaves_the_previous_extract(sandbox: Any, env: tuple) -> None:
    client, store, settings = env
    settings = settings.replace(page_size=50)
    interval = (pd.Timestamp("2026-10-01"), pd.Timestamp("2026-11-01"))
    extract_interval(client, store, settings, *interval, full_history=False, batch_rows=120)
    before = snapshot(settings.home_abs)
    sandbox.web.clear_request_log()
    sandbox.web.faults.set("error_503", count=10, query="interactions", page=8, retry_after=0)
    with pytest.raises(SlateTransientError, match="interactions"):
        extract_interval(client, store, settings, *interval, full_history=False, batch_rows=120)
    ok = [e for e in sandbox.web.request_log() if e["query"] == "interactions" and e["status"] == 200]
    assert len(ok) == 7  # pages 1-7 arrived, so earlier batches (120 rows each) were spilled before the failure
    assert snapshot(settings.home_abs) == before  # no temp files left, nothing replaced


def test_sorted_runs_merge_overlapping_batches_like_one_clean(tmp_path: Path) -> None:
    import numpy as np

    from leadscore.data.clean import clean_interactions
    from leadscore.data.extract import _SortedRuns
    from leadscore.data.store import contract_table

    rng = np.random.default_rng(5)
    guids = [f"{i:08x}-0000-4000-8000-{i:012x}" for i in rng.integers(0, 400, 3000)]  # many repeats
    frame = pd.DataFrame(
        {
            "interaction_guid": pd.Series(guids, dtype="string"),
            "person_guid": pd.Series(guids, dtype="string"),
            "kind": pd.Series(["ping"] * 3000, dtype="string"),
            "detail": pd.Series([f"row{i}" for i in range(3000)], dtype="string"),  # tells which duplicate was kept
            "occurred": pd.Series(pd.date_range("2026-01-01", periods=3000, freq="min"), dtype="datetime64[us]"),
        }
    )
    runs = _SortedRuns(tmp_path, "interaction_guid")
    for start in range(0, 3000, 700):  # overlapping key ranges, as pages in another key order give
        runs.add(contract_table(INTERACTIONS, clean_interactions(frame.iloc[start : start + 700])[0]))
    import pyarrow as pa

    merged = pa.concat_tables(list(runs.merge())).to_pandas()
    runs.remove()
    expected = contract_table(INTERACTIONS, clean_interactions(frame)[0]).to_pandas()
    pd.testing.assert_frame_equal(merged, expected)
    assert not list(tmp_path.iterdir())


def test_the_store_holds_the_same_files_whichever_order_the_server_pages_in(
    sandbox: Any, sandbox_text_order: Any, tmp_path: Path
) -> None:
    interval = (pd.Timestamp("2026-10-01"), pd.Timestamp("2026-11-01"))
    settings = Settings(home=tmp_path / "home", page_size=50)
    stores = {}
    for name, handle in (("sqlserver", sandbox), ("text", sandbox_text_order)):
        client = SlateClient(sandbox_config(handle), sleep=FakeSleep())
        assert client.config.key_order == name  # as the sandbox's printed connection says
        store = ExtractStore(tmp_path / name / "extracts", tmp_path / name / "q", tmp_path / name / "dq")
        summary = extract_interval(client, store, settings, *interval, full_history=False, batch_rows=120)
        assert summary.interactions.pages > 10 and summary.interactions.rows_out > 0
        stores[name] = store
    for query in (LEADS, INTERACTIONS):
        assert (
            stores["sqlserver"].path(query, *interval).read_bytes()
            == stores["text"].path(query, *interval).read_bytes()
        )


def test_an_instance_in_new_york_gets_wall_time_windows_and_the_store_holds_utc(
    sandbox_data_dir: Path, tmp_path: Path
) -> None:
    from tests.fixtures_sandbox import web_service_in_zone

    settings = Settings(home=tmp_path / "home", slate_timezone="America/New_York")
    store = ExtractStore.from_settings(settings)
    with web_service_in_zone(sandbox_data_dir, "America/New_York") as (web, config):
        client = SlateClient(config, sleep=FakeSleep())
        extract_interval(client, store, settings, *W1)
        web.clear_request_log()
        summary = extract_interval(client, store, settings, *W2)
        sent = {(e["params"]["since"], e["params"]["until"]) for e in web.request_log()}
    assert sent == {("2026-11-08T19:00:00", "2026-11-15T19:00:00")}  # EST: the UTC week's bounds as wall time
    assert (summary.since, summary.until) == ("2026-11-09T00:00:00", "2026-11-16T00:00:00")
    assert (summary.timezone, summary.wire_since, summary.wire_until) == (
        "America/New_York",
        "2026-11-08T19:00:00",
        "2026-11-15T19:00:00",
    )
    week = store.read(INTERACTIONS, *W2)
    assert len(week) > 0 and week["occurred"].between(W2[0], W2[1], inclusive="left").all()  # UTC, inside the week
    assert week["person_guid"].str.fullmatch(r"[0-9a-f]{8}(-[0-9a-f]{4}){3}-[0-9a-f]{12}").all()
    assert store.read_summary(*W2)["wire_since"] == "2026-11-08T19:00:00"
