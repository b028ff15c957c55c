"""Promise 6 across processes: two runs of the same week are serialized by the per-week lock.

Real `python -m leadscore` processes. The first is held (``LEADSCORE_PAUSE_POINT``) right after uploading its first
chunk, inside the lock; the second is started and must report (``LEADSCORE_FAULT_TRACE``) that it waits for the lock
before it changes anything. Then the first is released.

- Two deliveries of the same week: one sends every chunk, the other sends none; Slate imports each chunk once.
- A re-scoring of the week while it is being delivered: the re-scoring waits (its files would otherwise change under
  the delivery), the delivery completes with the files it started with, then the new files are delivered.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from leadscore.scoring.files import read_manifest
from leadscore.slate.ledger import DeliveryLedger
from tests.reliability.procs import WEEK2_END, cli_env, finish, start, wait_for_trace, week_args

SCORES = f"scores/{WEEK2_END:%Y%m%d}"


def held_delivery(home: Path, sandbox: Any, tmp_path: Path) -> tuple[Any, Path, Path]:
    """Start a delivery held right after its first upload (inside the lock); (process, trace, release file)."""
    trace, release = tmp_path / "first.trace", tmp_path / "release"
    env = cli_env(
        home,
        sandbox,
        LEADSCORE_PAUSE_POINT="deliver.after_upload",
        LEADSCORE_PAUSE_UNTIL=str(release),
        LEADSCORE_FAULT_TRACE=str(trace),
    )
    proc = start(week_args("deliver"), env, tmp_path / "first.log")
    wait_for_trace(trace, "deliver.after_upload", proc)
    return proc, trace, release


def summary(log: Path) -> dict:
    return json.loads(log.read_text().strip().splitlines()[-1])


def test_two_processes_delivering_the_same_week_send_each_chunk_once(
    cli_home: Any, sandbox: Any, tmp_path: Path
) -> None:
    home = cli_home.copy(tmp_path / "home")
    manifest = read_manifest(home / SCORES)
    first, _, release = held_delivery(home, sandbox, tmp_path)
    trace = tmp_path / "second.trace"
    second = start(
        week_args("deliver"), cli_env(home, sandbox, LEADSCORE_FAULT_TRACE=str(trace)), tmp_path / "second.log"
    )
    wait_for_trace(trace, "lock.waiting", second)
    release.touch()
    assert finish(first) == 0 and finish(second) == 0
    reports = [summary(tmp_path / "first.log"), summary(tmp_path / "second.log")]
    assert [r["sent"] for r in reports] == [len(manifest.files), 0]
    assert reports[1]["skipped"] == len(manifest.files)
    sandbox.importer.poll()
    assert sorted(e["file"] for e in sandbox.importer.log()) == [f.name for f in manifest.files]
    assert len(DeliveryLedger(home / "ledger").entries()) == len(manifest.files)


def test_rescoring_a_week_waits_for_its_delivery(cli_home: Any, sandbox: Any, tmp_path: Path) -> None:
    home = cli_home.copy(tmp_path / "home")
    old = read_manifest(home / SCORES)
    old_bytes = (home / SCORES / "manifest.json").read_bytes()
    first, _, release = held_delivery(home, sandbox, tmp_path)
    trace = tmp_path / "second.trace"
    # Smaller chunks: the re-scoring writes other files than the ones being delivered.
    env = cli_env(home, sandbox, LEADSCORE_FAULT_TRACE=str(trace), LEADSCORE_CHUNK_ROWS="150")
    second = start(week_args("score"), env, tmp_path / "second.log")
    wait_for_trace(trace, "lock.waiting", second)
    assert (home / SCORES / "manifest.json").read_bytes() == old_bytes  # it waits before writing anything
    release.touch()
    assert finish(first) == 0, (tmp_path / "first.log").read_text()[-3000:]
    assert finish(second) == 0, (tmp_path / "second.log").read_text()[-3000:]
    delivered = summary(tmp_path / "first.log")
    assert delivered["sent"] == len(old.files)  # the held delivery finished with the files it started with
    ledger = DeliveryLedger(home / "ledger").entries()
    assert {(e.file, e.sha256) for e in ledger} >= {(f.name, f.sha256) for f in old.files}
    new = read_manifest(home / SCORES)
    assert len(new.files) > len(old.files)
    assert {(e.file, e.sha256) for e in ledger} >= {(f.name, f.sha256) for f in new.files}
    sandbox.importer.poll()  # the new files replaced the old ones before Slate polled: each new chunk once
    assert sorted(e["file"] for e in sandbox.importer.log()) == [f.name for f in new.files]
