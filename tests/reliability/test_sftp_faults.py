"""Promise 2: no partial or duplicate file is ever imported by Slate.

The sandbox's SFTP server drops the connection at each stage of a delivery (mid-upload, between upload and rename, at
the rename, between chunks); the importer (Slate's pickup) polls after each step; a retry of the delivery then
completes. Every chunk must be imported exactly once, never a ``.part``, and nothing may be left behind. Server faults
(permission denied, disk full, slow) must end with a clear error or a complete delivery, and leave resumable state.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import pytest

from leadscore.scoring.files import Manifest
from leadscore.settings import Settings
from leadscore.slate.delivery import ChunkDeliveryError, DeliveryReport, deliver, ledger_for
from tests.reliability.helpers import sandbox_secrets, sftp_conn
from tests.slate.test_delivery import write_files

IMPORT_DIR = "incoming/lead_scores"
PROCESSED_DIR = "incoming/processed"
N_ROWS, CHUNK_ROWS = 900, 300  # three chunks


@pytest.fixture
def env(sandbox: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> tuple[Any, Settings, Manifest]:
    monkeypatch.setenv("AIRFLOW_CONN_SLATE_SFTP", json.dumps(sftp_conn(sandbox)))
    settings = Settings(home=tmp_path / "home", delivery_retries=1)  # a dropped connection fails the run at once
    manifest = write_files(sandbox, tmp_path / "home", N_ROWS, chunk_rows=CHUNK_ROWS)
    assert len(manifest.files) == 3
    return sandbox, settings, manifest


def names(sandbox: Any, folder: str) -> list[str]:
    return sorted(p.name for p in (sandbox.paths.sftp_root / folder).iterdir())


def poll(sandbox: Any) -> list[str]:
    """One pickup by the importer; the names it imported. A ``.part`` must never be among them."""
    imported = [r.file for r in sandbox.importer.poll()]
    assert not any(name.endswith(".part") for name in imported)
    return imported


def assert_imported_exactly_once(sandbox: Any, settings: Settings, manifest: Manifest) -> None:
    """Each chunk imported once with all its rows, nothing left in the import folder, one ledger line per chunk."""
    log = sandbox.importer.log()
    assert sorted(entry["file"] for entry in log) == [f.name for f in manifest.files]
    assert all(not entry["errors"] and entry["unknown"] == 0 for entry in log)
    assert sum(entry["rows"] for entry in log) == manifest.rows == N_ROWS
    fields = sandbox.importer.fields()
    assert len(fields) == N_ROWS and fields["person_guid"].is_unique
    assert names(sandbox, IMPORT_DIR) == []  # nothing left behind, no .part
    assert names(sandbox, PROCESSED_DIR) == [f.name for f in manifest.files]
    entries = ledger_for(settings).entries(manifest.scored_on)
    assert sorted(e.file for e in entries) == [f.name for f in manifest.files]  # one record per chunk
    assert {e.file: e.sha256 for e in entries} == {f.name: f.sha256 for f in manifest.files}


def fail_then_retry(sandbox: Any, settings: Settings, manifest: Manifest, sent_before_failure: int) -> DeliveryReport:
    """The first delivery fails on the armed fault; poll; the retry completes; poll. Returns the retry's report."""
    with pytest.raises(ChunkDeliveryError) as info:
        deliver(manifest, settings, backoff_seconds=0.01)
    assert sandbox.sftp.faults.armed() == []  # the fault fired
    message = str(info.value)
    assert "re-running the delivery sends only the rest" in message
    for secret in sandbox_secrets(sandbox):
        assert secret not in message
    first = poll(sandbox)
    assert first == [f.name for f in manifest.files[:sent_before_failure]]
    report = deliver(manifest, settings, backoff_seconds=0.01)
    assert (report.sent, report.skipped) == (3 - sent_before_failure, sent_before_failure)
    second = poll(sandbox)
    assert sorted(first + second) == [f.name for f in manifest.files]
    assert poll(sandbox) == []
    assert_imported_exactly_once(sandbox, settings, manifest)
    return report


# (stage, fault, chunk index it hits, file the fault matches: the .part or the final name, params, chunks sent)
KILLS = [
    pytest.param("drop_upload", 1, ".part", {"after_bytes": 4000}, 1, id="mid-upload"),
    pytest.param("drop_after_files", 1, ".part", {"files": 1}, 1, id="between-upload-and-rename"),
    pytest.param("drop_rename", 0, "", {}, 0, id="at-the-rename"),
    pytest.param("drop_upload", 2, ".part", {"after_bytes": 0}, 2, id="between-chunks"),
]


@pytest.mark.parametrize(("fault", "chunk", "suffix", "params", "sent_before"), KILLS)
def test_killed_connection_then_retry_imports_every_chunk_exactly_once(
    env: tuple, fault: str, chunk: int, suffix: str, params: dict, sent_before: int
) -> None:
    sandbox, settings, manifest = env
    sandbox.sftp.faults.set(fault, query=manifest.files[chunk].name + suffix, **params)
    fail_then_retry(sandbox, settings, manifest, sent_before)


def test_killed_connection_is_retried_within_one_run(env: tuple) -> None:
    sandbox, settings, manifest = env
    settings = settings.replace(delivery_retries=3)
    sandbox.sftp.faults.set("drop_upload", query=manifest.files[0].name + ".part", after_bytes=1000)
    sandbox.sftp.faults.set("drop_rename", query=manifest.files[1].name)
    sandbox.sftp.faults.set("drop_after_files", query=manifest.files[2].name + ".part", files=1)
    report = deliver(manifest, settings, backoff_seconds=0.01)
    assert report.sent == 3 and report.attempts == 6 and sandbox.sftp.faults.armed() == []
    assert sorted(poll(sandbox)) == [f.name for f in manifest.files]
    assert_imported_exactly_once(sandbox, settings, manifest)


def test_importer_polling_during_a_slow_upload_never_sees_a_partial_file(env: tuple) -> None:
    sandbox, settings, manifest = env
    for f in manifest.files:  # each .part waits at open and at close: the importer polls meanwhile
        sandbox.sftp.faults.set("slow", query=f.name + ".part", seconds=0.3)
    done = threading.Event()
    reports: list[DeliveryReport] = []

    def run() -> None:
        try:
            reports.append(deliver(manifest, settings, backoff_seconds=0.01))
        finally:
            done.set()

    thread = threading.Thread(target=run)
    thread.start()
    imported: list[str] = []
    polls = 0
    while not done.is_set():
        imported += poll(sandbox)  # takes only complete, renamed chunks
        polls += 1
        done.wait(0.05)
    thread.join()
    imported += poll(sandbox)
    assert polls > 1 and reports and reports[0].sent == 3
    assert sorted(imported) == [f.name for f in manifest.files]
    assert_imported_exactly_once(sandbox, settings, manifest)


def test_permission_denied_is_a_clear_error_and_a_later_retry_completes(env: tuple) -> None:
    sandbox, settings, manifest = env
    second = manifest.files[1]
    sandbox.sftp.faults.set("permission_denied", query=second.name + ".part")
    with pytest.raises(ChunkDeliveryError) as info:
        deliver(manifest, settings.replace(delivery_retries=3), backoff_seconds=0.01)
    message = str(info.value)
    assert f"denied writing chunk {second.name}" in message and "may write and rename" in message
    assert sandbox.sftp.faults.armed() == []
    assert [e.file for e in ledger_for(settings).entries()] == [manifest.files[0].name]  # resumable state
    assert poll(sandbox) == [manifest.files[0].name]
    report = deliver(manifest, settings, backoff_seconds=0.01)
    assert (report.sent, report.skipped) == (2, 1)
    assert sorted(poll(sandbox)) == [f.name for f in manifest.files[1:]]
    assert_imported_exactly_once(sandbox, settings, manifest)


def test_disk_full_fails_clearly_after_retries_leaves_no_part_and_resumes(env: tuple) -> None:
    sandbox, settings, manifest = env
    third = manifest.files[2]
    sandbox.sftp.faults.set("disk_full", count=2, query=third.name + ".part", after_bytes=100)
    with pytest.raises(ChunkDeliveryError) as info:
        deliver(manifest, settings.replace(delivery_retries=2), backoff_seconds=0.01)
    message = str(info.value)
    assert f"chunk {third.name} of {manifest.scored_on} failed 2 times" in message
    # paramiko pipelines the writes, so the server's "No space left" comes back as a short remote file: the size
    # check after the upload catches it before any rename.
    assert f"expected {third.bytes}" in message
    assert names(sandbox, IMPORT_DIR) == [f.name for f in manifest.files[:2]]  # the failed .part was removed
    assert sorted(poll(sandbox)) == [f.name for f in manifest.files[:2]]
    report = deliver(manifest, settings, backoff_seconds=0.01)
    assert (report.sent, report.skipped) == (1, 2)
    assert poll(sandbox) == [third.name]
    assert_imported_exactly_once(sandbox, settings, manifest)


def test_slow_server_still_delivers_each_chunk_once(env: tuple) -> None:
    sandbox, settings, manifest = env
    sandbox.sftp.faults.set("slow", count=3, query="lead_scores_*.part", seconds=0.2)
    report = deliver(manifest, settings, backoff_seconds=0.01)
    assert report.sent == 3 and report.attempts == 3 and sandbox.sftp.faults.armed() == []
    assert sorted(poll(sandbox)) == [f.name for f in manifest.files]
    assert_imported_exactly_once(sandbox, settings, manifest)
