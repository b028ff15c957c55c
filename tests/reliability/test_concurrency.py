"""Promise 6: two runs of the same week cannot both deliver, from two threads or from two worker processes.

Two deliveries of the same week started at the same moment: one sends, the other waits for the per-date lock and then
finds every chunk in the ledger (or, past its lock timeout, fails with a clear message). The ledger keeps one record
per chunk and Slate imports each chunk once. Both ledgers are checked: the local files (one host) and the shared
PostgreSQL database of ``LEADSCORE_LEDGER_CONN_ID`` (workers on several hosts: two processes share nothing but the
database). The DAGs allow one active run each.
"""

from __future__ import annotations

import ast
import json
import multiprocessing
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from leadscore.settings import Settings
from leadscore.slate.delivery import DeliveryReport, deliver, ledger_for
from leadscore.slate.ledger import LedgerLockTimeout
from tests.postgres import connection_json, temporary_database
from tests.reliability.helpers import sftp_conn
from tests.slate.test_delivery import write_files

ROOT = Path(__file__).resolve().parents[2]
LEDGER_CONN_ID = "leadscore_ledger"


def run_together(n: int, target: Any) -> list[Any]:
    """Start ``n`` threads on ``target`` at the same moment; their results or exceptions, in start order."""
    barrier = threading.Barrier(n)
    out: list[Any] = [None] * n

    def run(i: int) -> None:
        barrier.wait()
        try:
            out[i] = target()
        except Exception as exc:  # kept for the assertions
            out[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return out


def _deliver_in_worker(barrier: Any, results: Any, manifest: Any, settings: Settings, lock_timeout: float) -> None:
    """One worker process: everything imported, then wait for the other, then deliver; the outcome goes to results."""
    from leadscore.slate.delivery import deliver as deliver_here

    barrier.wait(60)
    try:
        results.put(deliver_here(manifest, settings, backoff_seconds=0.01, lock_timeout=lock_timeout))
    except Exception as exc:  # sent back for the assertions
        results.put(exc)


def in_two_processes(manifest: Any, settings: Settings, lock_timeout: float = 600.0) -> list[Any]:
    """Deliver from two fresh (spawned) worker processes at the same moment; their reports or exceptions."""
    ctx = multiprocessing.get_context("spawn")
    barrier, results = ctx.Barrier(2), ctx.Queue()
    workers = [
        ctx.Process(target=_deliver_in_worker, args=(barrier, results, manifest, settings, lock_timeout))
        for _ in range(2)
    ]
    for w in workers:
        w.start()
    try:
        out = [results.get(timeout=180) for _ in workers]
    finally:
        for w in workers:
            w.join(30)
            if w.is_alive():
                w.kill()
    assert [w.exitcode for w in workers] == [0, 0]
    return out


@pytest.fixture(params=["files", "postgres"])
def backend(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The ledger backend: "" (local files) or the conn id of a fresh PostgreSQL database, dropped afterwards."""
    if request.param == "files":
        yield ""
        return
    with temporary_database() as database:
        monkeypatch.setenv(f"AIRFLOW_CONN_{LEDGER_CONN_ID.upper()}", connection_json(database))
        yield LEDGER_CONN_ID


@pytest.fixture
def env(sandbox: Any, backend: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> tuple[Any, Settings, Any]:
    monkeypatch.setenv("AIRFLOW_CONN_SLATE_SFTP", json.dumps(sftp_conn(sandbox)))
    settings = Settings(home=tmp_path / "home", ledger_conn_id=backend)
    assert type(ledger_for(settings)).__name__ == ("DatabaseLedger" if backend else "DeliveryLedger")
    manifest = write_files(sandbox, tmp_path / "home", 600, chunk_rows=200)
    # The first upload is slow, so the run holding the lock is still delivering when the other arrives.
    sandbox.sftp.faults.set("slow", query=manifest.files[0].name + ".part", seconds=0.5)
    return sandbox, settings, manifest


def _threads(manifest: Any, settings: Settings, lock_timeout: float = 600.0) -> list[Any]:
    return run_together(2, lambda: deliver(manifest, settings, backoff_seconds=0.01, lock_timeout=lock_timeout))


RUNNERS: dict[str, Callable[..., list[Any]]] = {"threads": _threads, "processes": in_two_processes}


@pytest.mark.parametrize("runner", RUNNERS)
def test_two_simultaneous_deliveries_of_a_week_deliver_once(env: tuple, runner: str) -> None:
    sandbox, settings, manifest = env
    reports = RUNNERS[runner](manifest, settings)
    assert all(isinstance(r, DeliveryReport) for r in reports), reports
    assert sorted((r.sent, r.skipped) for r in reports) == [(0, 3), (3, 0)]  # the waiter skipped everything
    entries = ledger_for(settings).entries(manifest.scored_on)
    assert sorted(e.file for e in entries) == [f.name for f in manifest.files]  # one record per chunk
    results = sandbox.importer.poll()
    assert sorted(r.file for r in results) == [f.name for f in manifest.files]  # each chunk imported once
    assert sum(r.rows for r in results) == 600 and sandbox.importer.poll() == []


def test_a_second_delivery_that_cannot_wait_fails_clearly_and_the_ledger_stays_consistent(env: tuple) -> None:
    _sandbox, settings, manifest = env
    outcomes = in_two_processes(manifest, settings, lock_timeout=0.1)
    reports = [o for o in outcomes if isinstance(o, DeliveryReport)]
    errors = [o for o in outcomes if isinstance(o, Exception)]
    assert len(reports) == 1 and reports[0].sent == 3
    assert len(errors) == 1 and isinstance(errors[0], LedgerLockTimeout)
    assert "another delivery of the scores of" in str(errors[0]) and "re-run" in str(errors[0])
    assert len(ledger_for(settings).entries(manifest.scored_on)) == 3
    again = deliver(manifest, settings, backoff_seconds=0.01)  # the failed one, re-run: nothing left to send
    assert (again.sent, again.skipped) == (0, 3) and len(ledger_for(settings).entries()) == 3


@pytest.mark.parametrize("dag_file", ["lead_data.py", "lead_training.py", "lead_inference.py"])
def test_dags_allow_one_active_run(dag_file: str) -> None:
    tree = ast.parse((ROOT / "dags" / dag_file).read_text())
    values = [
        kw.value.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "DAG"
        for kw in node.keywords
        if kw.arg == "max_active_runs" and isinstance(kw.value, ast.Constant)
    ]
    assert values == [1]
