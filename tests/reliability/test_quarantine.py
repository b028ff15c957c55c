"""Promise 3 (bad input is caught, counted and explained) where it touches the files an interval keeps.

A re-run refused for too many bad rows changes none of the interval's files (its quarantined rows go to a
``.rejected.csv`` beside the kept quarantine file); an unexpected column (a Slate query that gained ``phone``) is
dropped before anything is written and counted by name in the data-quality summary, never by value.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from leadscore.data.extract import extract_interval
from leadscore.data.store import ExtractStore
from leadscore.data.validate import QuarantineLimitError
from leadscore.settings import Settings
from leadscore.slate.queries import INTERACTIONS, LEADS
from tests.reliability.helpers import client_for, snapshot

INTERVAL = (pd.Timestamp("2026-10-01"), pd.Timestamp("2026-11-01"))
PHONE = "+1 555 867 {i:04d}"


@pytest.mark.parametrize("query", [LEADS.name, INTERACTIONS.name])
def test_a_refused_rerun_keeps_the_intervals_earlier_quarantine_file(sandbox: Any, tmp_path: Path, query: str) -> None:
    home = tmp_path / "home"
    settings = Settings(home=home, page_size=50)
    store = ExtractStore.from_settings(settings)
    extract_interval(client_for(sandbox), store, settings, *INTERVAL, full_history=False)
    before = snapshot(home)
    assert store.quarantine_path(query, *INTERVAL).exists()
    if query == LEADS.name:  # ten leads of page 2 arrive without origin_date: 8 % of the answer, above 2 %
        sandbox.web.faults.set("drop_column", query=query, page=2, column="origin_date")
        rerun = settings.replace(page_size=10)
    else:  # the first pages of interactions arrive without `occurred`: 3 % of the answer, above 2 %
        rows = store.read_summary(*INTERVAL)["interactions"]["rows_in"]
        pages = -(-int(rows * 0.03) // 10) + 1
        sandbox.web.faults.set("drop_column", count=pages, query=query, column="occurred")
        rerun = settings.replace(page_size=10)
    with pytest.raises(QuarantineLimitError) as info:
        extract_interval(client_for(sandbox), store, rerun, *INTERVAL, full_history=False)
    assert f"query {query!r}" in str(info.value)
    rejected = store.rejected_path(query, *INTERVAL)
    assert str(rejected) in str(info.value)
    after = snapshot(home)
    assert after.pop(str(rejected.relative_to(home))) and after == before  # all or nothing: only the diagnosis file
    assert len(pd.read_csv(rejected)) >= 1  # the refused run's rows, for diagnosis


def test_an_unexpected_column_is_dropped_before_anything_is_written_and_counted_by_name(
    sandbox: Any, tmp_path: Path
) -> None:
    home = tmp_path / "home"
    settings = Settings(home=home, page_size=10, quarantine_max_share=1.0)
    store = ExtractStore.from_settings(settings)
    for query in (LEADS.name, INTERACTIONS.name):
        sandbox.web.faults.set("add_column", count=10_000, query=query, column="phone", value=PHONE)
    # Ten leads lose origin_date, so the leads quarantine has rows too (October has one dirty interaction).
    sandbox.web.faults.set("drop_column", query=LEADS.name, page=2, column="origin_date")
    summary = extract_interval(client_for(sandbox), store, settings, *INTERVAL, full_history=False)
    served = [e for e in sandbox.web.request_log() if any(f.startswith("add_column") for f in e.get("fault") or [])]
    assert served, "the sandbox never served the extra column"
    for query in (LEADS.name, INTERACTIONS.name):
        quarantined = pd.read_csv(store.quarantine_path(query, *INTERVAL), dtype=str)
        assert len(quarantined) > 0 and "phone" not in quarantined.columns
        counted = getattr(summary, query).extra_columns
        assert counted.get("phone", 0) == getattr(summary, query).rows_in > 0  # counted by name
    text = json.dumps(store.read_summary(*INTERVAL))
    assert '"phone"' in text
    values = [PHONE.format(i=i).encode() for i in range(50)]
    files = [p for p in home.rglob("*") if p.is_file()]
    assert len(files) >= 5
    for path in files:  # no phone value in any file: extracts (decoded too), quarantine, summary
        data = path.read_bytes()
        if path.suffix == ".parquet":
            data = pd.read_parquet(path).to_csv().encode()
            assert "phone" not in pd.read_parquet(path).columns
        assert not any(v in data for v in values), path
