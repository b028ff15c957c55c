"""Promise 1: no partial data is ever used.

Every fault switch of the sandbox's query web service, armed for the MIDDLE page (page 2) of a multi-page pull of an
interval that already has an extract, must leave that interval's files byte-identical and fail the run with a message
naming the query, the page and the cause.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from leadscore.data.extract import extract_interval
from leadscore.data.store import ExtractStore
from leadscore.settings import Settings
from leadscore.slate.errors import SlateError, SlateResponseError, SlateSchemaError, SlateTransientError
from leadscore.slate.queries import INTERACTIONS, LEADS
from tests.reliability.helpers import client_for, sandbox_secrets, snapshot

# October 2026: 128 leads and about 2,700 interactions in the sandbox, so page size 50 gives 3 and 55 pages.
INTERVAL = (pd.Timestamp("2026-10-01"), pd.Timestamp("2026-11-01"))
PAGE_SIZE = 50
MAX_RETRIES = 1  # each transient fault is armed for every attempt of the page: 1 + MAX_RETRIES
ATTEMPTS = MAX_RETRIES + 1
REQUIRED_NON_KEY = {LEADS.name: "origin_date", INTERACTIONS.name: "occurred"}

# (fault, arm params, expected error class, text of the cause that must be in the message)
FAULTS: list[tuple[str, dict[str, Any], type[SlateError], str]] = [
    ("rate_limit", {"count": ATTEMPTS, "retry_after": 0}, SlateTransientError, "HTTP 429"),
    ("error_500", {"count": ATTEMPTS}, SlateTransientError, "HTTP 500"),
    ("error_503", {"count": ATTEMPTS, "retry_after": 0}, SlateTransientError, "HTTP 503"),
    ("slow", {"count": ATTEMPTS, "seconds": 1.0}, SlateTransientError, "timed out"),
    ("truncated_json", {"count": ATTEMPTS}, SlateResponseError, "invalid JSON"),
    ("html_error", {"count": 1}, SlateResponseError, "HTML page"),
    ("drop_connection", {"count": ATTEMPTS}, SlateTransientError, "connection failed"),
    ("drop_column", {"count": 1}, SlateSchemaError, "absent from all"),
    ("repeat_cursor", {"count": 1}, SlateResponseError, "cursor went backwards or repeated"),
]
CASES = [
    pytest.param(query, kind, params, error, cause, id=f"{kind}-{query}")
    for kind, params, error, cause in FAULTS
    for query in (LEADS.name, INTERACTIONS.name)
]


@pytest.fixture(scope="module")
def stored(sandbox_session: Any, tmp_path_factory: pytest.TempPathFactory) -> tuple[Settings, ExtractStore, dict]:
    """The interval extracted once, fault-free; every case re-runs it under a fault."""
    home: Path = tmp_path_factory.mktemp("web_faults") / "home"
    settings = Settings(home=home, page_size=PAGE_SIZE)
    store = ExtractStore.from_settings(settings)
    sandbox_session.web.faults.clear()
    summary = extract_interval(client_for(sandbox_session), store, settings, *INTERVAL, full_history=False)
    assert summary.leads.pages >= 3 and summary.interactions.pages >= 3  # page 2 really is in the middle
    return settings, store, snapshot(home)


@pytest.mark.parametrize(("query", "kind", "params", "error", "cause"), CASES)
def test_fault_mid_pull_keeps_the_previous_extract_and_names_query_page_cause(
    sandbox: Any, stored: tuple, query: str, kind: str, params: dict, error: type, cause: str
) -> None:
    settings, store, before = stored
    client = client_for(sandbox, max_retries=MAX_RETRIES, read_timeout=0.25)
    extra = {"column": REQUIRED_NON_KEY[query]} if kind == "drop_column" else {}
    sandbox.web.faults.set(kind, query=query, page=2, **params, **extra)

    with pytest.raises(error) as info:
        extract_interval(client, store, settings, *INTERVAL, full_history=False)

    message = str(info.value)
    assert f"query '{query}'" in message and "page 2" in message and cause in message, message
    assert info.value.query == query and info.value.page == 2
    for secret in sandbox_secrets(sandbox):
        assert secret not in message
    assert sandbox.web.faults.armed() == []  # the fault fired as often as armed
    log = [e for e in sandbox.web.request_log() if e["query"] == query]
    assert log[0]["status"] == 200 and not log[0]["fault"]  # page 1 was good: the fault hit mid-pull
    assert [f["kind"] for f in sandbox.web.faults.fired] == [kind] * params["count"]
    assert snapshot(settings.home_abs) == before  # byte-identical: extract, quarantine and summary untouched
    assert not list(settings.home_abs.rglob("*.tmp"))  # no staged leftovers
    if kind == "slow":
        _wait_for_sleeping_handlers(sandbox, params["count"])


def _wait_for_sleeping_handlers(sandbox: Any, count: int) -> None:
    """Let the server threads of timed-out requests finish, so they cannot take the next test's faults."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if sum("slow" in e["fault"] for e in sandbox.web.request_log()) >= count:
            return
        time.sleep(0.05)
    raise AssertionError("the slow requests never finished on the server")


def test_a_clean_rerun_after_the_faults_reproduces_the_same_bytes(sandbox: Any, stored: tuple) -> None:
    settings, store, before = stored
    extract_interval(client_for(sandbox), store, settings, *INTERVAL, full_history=False)
    after = snapshot(settings.home_abs)
    data = [k for k in before if not k.startswith("reports/")]  # the summary carries wall-clock timings
    assert len(data) >= 4 and {k: after[k] for k in data} == {k: before[k] for k in data}
