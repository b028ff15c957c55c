"""Delivery of score files to the sandbox's SFTP server, checked through the sandbox's Slate importer."""

from __future__ import annotations

import json
import threading
from datetime import date
from pathlib import Path

import asyncssh
import numpy as np
import pandas as pd
import pytest

from leadscore.scoring.files import Manifest, write_score_files
from leadscore.scoring.score import score_leads
from leadscore.settings import Settings
from leadscore.slate.delivery import (
    ChunkDeliveryError,
    DeliveryConfigError,
    HostKeyError,
    deliver,
    ledger_for,
)
from leadscore.slate.ledger import LedgerLockTimeout
from tests.scoring.fakes import DummyModel, make_features

DAY = date(2026, 11, 22)
IMPORT_DIR = "incoming/lead_scores"


def known_guids(sandbox: object, n: int) -> np.ndarray:
    guids = pd.read_parquet(sandbox.paths.leads, columns=["person_guid"])["person_guid"]  # type: ignore[attr-defined]
    clean = guids.dropna().astype(str).str.strip().str.lower().drop_duplicates()
    return clean.to_numpy(dtype=object)[:n]


def write_files(sandbox: object, home: Path, n: int, chunk_rows: int, seed: int = 0) -> Manifest:
    features = make_features(n, seed)
    features["person_guid"] = pd.array(known_guids(sandbox, n), dtype="string")
    scores = score_leads(DummyModel(), features, "5", DAY, Settings())
    return write_score_files(scores, home / "scores", DAY, chunk_rows, 5_000_000)


def remote_names(sandbox: object, folder: str = IMPORT_DIR) -> list[str]:
    return sorted(p.name for p in (sandbox.paths.sftp_root / folder).iterdir())  # type: ignore[attr-defined]


def sftp_conn(sandbox: object) -> dict:
    """The sandbox's slate_sftp connection, its host key given with its type as SSHHook needs for non-RSA keys."""
    conn = json.loads(sandbox.connection_uris()["AIRFLOW_CONN_SLATE_SFTP"])  # type: ignore[attr-defined]
    if " " not in conn["extra"]["host_key"].strip():
        conn["extra"]["host_key"] = sandbox.host_key_line  # type: ignore[attr-defined]
    return conn


@pytest.fixture
def env(sandbox: object, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> tuple[object, Settings, Manifest]:
    monkeypatch.setenv("AIRFLOW_CONN_SLATE_SFTP", json.dumps(sftp_conn(sandbox)))
    settings = Settings().replace(home=tmp_path / "home", delivery_retries=3)
    manifest = write_files(sandbox, tmp_path / "home", 900, chunk_rows=300)
    assert len(manifest.files) == 3
    return sandbox, settings, manifest


def test_three_chunks_imported_once_and_rerun_sends_nothing(env: tuple[object, Settings, Manifest]) -> None:
    sandbox, settings, manifest = env
    report = deliver(manifest, settings, backoff_seconds=0.01)
    assert (report.sent, report.skipped, report.attempts) == (3, 0, 3)
    assert report.bytes == manifest.bytes
    assert remote_names(sandbox) == [f.name for f in manifest.files]  # renamed, no .part left
    results = sandbox.importer.poll()  # type: ignore[attr-defined]
    assert sorted(r.file for r in results) == [f.name for f in manifest.files]
    assert sum(r.rows for r in results) == manifest.rows == 900
    assert all(r.unknown == 0 and not r.errors for r in results)
    fields = sandbox.importer.fields()  # type: ignore[attr-defined]
    assert len(fields) == 900 and set(fields["lead_tier"]) == {"A", "B", "C", "D"}
    assert [e.file for e in ledger_for(settings).entries(manifest.scored_on)] == [f.name for f in manifest.files]

    again = deliver(manifest, settings, backoff_seconds=0.01)
    assert (again.sent, again.skipped, again.attempts) == (0, 3, 0)
    assert remote_names(sandbox) == []
    assert sandbox.importer.poll() == []  # type: ignore[attr-defined]


def test_connection_drop_mid_upload_then_retry_delivers_each_chunk_once(
    env: tuple[object, Settings, Manifest],
) -> None:
    sandbox, settings, manifest = env
    second = manifest.files[1]
    sandbox.sftp.faults.set("drop_upload", query=second.name + ".part", after_bytes=second.bytes // 2)  # type: ignore[attr-defined]
    report = deliver(manifest, settings, backoff_seconds=0.01)
    assert report.sent == 3 and report.attempts == 4
    assert sandbox.sftp.faults.armed() == []  # type: ignore[attr-defined]  # the fault did fire
    assert remote_names(sandbox) == [f.name for f in manifest.files]
    results = sandbox.importer.poll()  # type: ignore[attr-defined]
    assert sorted(r.file for r in results) == [f.name for f in manifest.files]
    assert sum(r.rows for r in results) == manifest.rows
    assert len(sandbox.importer.log()) == 3  # type: ignore[attr-defined]
    assert ledger_for(settings).entries()[1].attempt == 2


def test_dropped_rename_is_resumed_not_resent(env: tuple[object, Settings, Manifest]) -> None:
    sandbox, settings, manifest = env
    first = manifest.files[0]
    sandbox.sftp.faults.set("drop_rename", query=first.name)  # type: ignore[attr-defined]
    sandbox.sftp.faults.set("drop_after_files", query=manifest.files[2].name + ".part", files=1)  # type: ignore[attr-defined]
    report = deliver(manifest, settings, backoff_seconds=0.01)
    assert report.sent == 3 and report.attempts == 5
    assert sandbox.sftp.faults.armed() == []  # type: ignore[attr-defined]
    assert remote_names(sandbox) == [f.name for f in manifest.files]
    results = sandbox.importer.poll()  # type: ignore[attr-defined]
    assert sum(r.rows for r in results) == manifest.rows and len(results) == 3


def test_failure_after_all_retries_then_rerun_sends_only_the_rest(env: tuple[object, Settings, Manifest]) -> None:
    sandbox, settings, manifest = env
    third = manifest.files[2]
    sandbox.sftp.faults.set("disk_full", count=3, query=third.name + ".part", after_bytes=100)  # type: ignore[attr-defined]
    with pytest.raises(ChunkDeliveryError, match=f"chunk {third.name} of 2026-11-22 failed 3 times"):
        deliver(manifest, settings, backoff_seconds=0.01)
    assert remote_names(sandbox) == [f.name for f in manifest.files[:2]]  # the failed .part was not left behind?
    report = deliver(manifest, settings, backoff_seconds=0.01)
    assert (report.sent, report.skipped) == (1, 2)
    assert remote_names(sandbox) == [f.name for f in manifest.files]


def test_rerun_with_fewer_parts_replaces_unimported_files(
    env: tuple[object, Settings, Manifest], tmp_path: Path
) -> None:
    sandbox, settings, manifest = env
    deliver(manifest, settings, backoff_seconds=0.01)
    # Same week re-scored before Slate picked the files up: 2 parts now, new content.
    rerun = write_files(sandbox, tmp_path / "home", 900, chunk_rows=450, seed=9)
    report = deliver(rerun, settings, backoff_seconds=0.01)
    # The new names are *_of_2, so every unimported *_of_3 file of the week is removed before upload.
    assert report.sent == 2 and set(report.removed) == {f.name for f in manifest.files}
    assert remote_names(sandbox) == [f.name for f in rerun.files]
    results = sandbox.importer.poll()  # type: ignore[attr-defined]
    assert sum(r.rows for r in results) == 900


def test_wrong_host_key_fails_fast_with_clear_message(
    env: tuple[object, Settings, Manifest], monkeypatch: pytest.MonkeyPatch
) -> None:
    sandbox, settings, manifest = env
    conn = sftp_conn(sandbox)
    conn["extra"]["host_key"] = asyncssh.generate_private_key("ssh-ed25519").export_public_key().decode().strip()
    monkeypatch.setenv("AIRFLOW_CONN_SLATE_SFTP", json.dumps(conn))
    with pytest.raises(HostKeyError) as info:
        deliver(manifest, settings, backoff_seconds=5.0)  # a retry would sleep: the error must come first
    message = str(info.value)
    assert f"{sandbox.sftp_host}:{sandbox.sftp_port}" in message  # type: ignore[attr-defined]
    assert "host_key" in message and "nothing was uploaded" in message
    assert remote_names(sandbox) == [] and ledger_for(settings).entries() == []

    del conn["extra"]["host_key"]
    monkeypatch.setenv("AIRFLOW_CONN_SLATE_SFTP", json.dumps(conn))
    with pytest.raises(DeliveryConfigError, match="does not pin"):
        deliver(manifest, settings)


def test_dry_run_uploads_nothing(env: tuple[object, Settings, Manifest]) -> None:
    sandbox, settings, manifest = env
    report = deliver(manifest, settings, dry_run=True)
    assert report.dry_run and report.sent == 3 and report.attempts == 0
    assert remote_names(sandbox) == [] and ledger_for(settings).entries() == []


def test_second_delivery_of_same_week_waits_for_the_lock(tmp_path: Path, sandbox: object) -> None:
    settings = Settings().replace(home=tmp_path / "home")
    manifest = write_files(sandbox, tmp_path / "home", 300, chunk_rows=300)
    ledger = ledger_for(settings)
    held, release = threading.Event(), threading.Event()

    def holder() -> None:
        with ledger.lock(manifest.scored_on):
            held.set()
            release.wait(10)

    thread = threading.Thread(target=holder)
    thread.start()
    try:
        assert held.wait(10)
        with pytest.raises(LedgerLockTimeout, match="another delivery of the scores of 2026-11-22"):
            deliver(manifest, settings, lock_timeout=0.3)
    finally:
        release.set()
        thread.join()
