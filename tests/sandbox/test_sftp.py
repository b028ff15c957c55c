"""The sandbox's SFTP server and Slate importer, over real SSH on 127.0.0.1 with paramiko (what SFTPHook uses)."""

from __future__ import annotations

import base64
import io
import json
from collections.abc import Iterator
from contextlib import contextmanager

import pandas as pd
import paramiko
import pytest

from leadscore.sandbox.config import load_or_create_credentials
from leadscore.sandbox.sftp_server import SandboxSFTPServer, sftp_file_mode

INCOMING = "/incoming/lead_scores"
DROPPED = (OSError, EOFError, paramiko.SSHException)


@contextmanager
def sftp(sandbox, password: str | None = "ok", pkey: paramiko.PKey | None = None) -> Iterator[paramiko.SFTPClient]:
    """An SFTP session that pins the sandbox's host key (unknown keys are rejected)."""
    client = paramiko.SSHClient()
    key = paramiko.Ed25519Key(data=base64.b64decode(sandbox.host_key_b64))
    client.get_host_keys().add(f"[{sandbox.sftp_host}]:{sandbox.sftp_port}", key.get_name(), key)
    client.set_missing_host_key_policy(paramiko.RejectPolicy())
    creds = sandbox.credentials
    client.connect(
        sandbox.sftp_host,
        port=sandbox.sftp_port,
        username=creds.sftp_user,
        password=creds.sftp_password if password == "ok" else password,
        pkey=pkey,
        allow_agent=False,
        look_for_keys=False,
        timeout=20,
    )
    try:
        yield client.open_sftp()
    finally:
        client.close()


def score_csv(guids: list[str]) -> bytes:
    rows = "".join(f"{g},{50 + i % 40},B,0.1234\n" for i, g in enumerate(guids))
    return ("person_guid,lead_score,lead_tier,p_apply_30d\n" + rows).encode()


@pytest.fixture(scope="module")
def known_guids(sandbox_data_dir) -> list[str]:
    leads = pd.read_parquet(sandbox_data_dir / "leads.parquet", columns=["person_guid"])
    return leads["person_guid"].dropna().str.lower().drop_duplicates().head(20).tolist()


# --- login and host key ---


def test_password_login_sees_slates_folders(sandbox):
    with sftp(sandbox) as s:
        assert sorted(s.listdir("/")) == ["incoming", "test"]
        assert sorted(s.listdir("/incoming")) == ["lead_scores", "processed"]
        assert s.listdir("/test") == ["incoming"]


def test_chroot_hides_the_sandbox_dir(sandbox):
    with sftp(sandbox) as s:
        assert s.normalize("..") == "/"
        assert "credentials.json" not in s.listdir("/..")


def test_wrong_password_is_refused(sandbox):
    with pytest.raises(paramiko.AuthenticationException), sftp(sandbox, password="wrong"):
        pass


def test_key_login(sandbox):
    pkey = paramiko.Ed25519Key.from_private_key_file(str(sandbox.client_key_path))
    with sftp(sandbox, password=None, pkey=pkey) as s:
        assert "incoming" in s.listdir("/")


def test_unknown_key_is_refused(sandbox, tmp_path):
    from leadscore.sandbox.sftp_server import load_or_create_key

    load_or_create_key(tmp_path / "other_key")
    other = paramiko.Ed25519Key.from_private_key_file(str(tmp_path / "other_key"))
    with pytest.raises(paramiko.AuthenticationException), sftp(sandbox, password=None, pkey=other):
        pass


def test_host_key_is_stable_across_restarts_and_files_are_private(sandbox):
    creds = load_or_create_credentials(sandbox.data_dir)
    assert creds == sandbox.credentials
    again = SandboxSFTPServer(sandbox.data_dir, creds).start()
    try:
        assert again.host_key == sandbox.sftp.host_key
        assert again.port != sandbox.sftp_port
        transport = paramiko.Transport(("127.0.0.1", again.port))
        transport.start_client(timeout=20)
        assert transport.get_remote_server_key().get_base64() == sandbox.host_key_b64
        transport.close()
    finally:
        again.stop()
    for path in (sandbox.paths.host_key, sandbox.paths.client_key, sandbox.paths.credentials):
        assert sftp_file_mode(path) == 0o600
    assert sftp_file_mode(sandbox.paths.sftp_root) == 0o700


# --- importer ---


def test_part_file_is_not_imported_until_renamed(sandbox, known_guids):
    name = "lead_scores_20261123_1_of_1.csv"
    with sftp(sandbox) as s:
        s.putfo(io.BytesIO(score_csv(known_guids[:5])), f"{INCOMING}/{name}.part")
        assert sandbox.importer.poll() == []
        assert s.listdir(INCOMING) == [f"{name}.part"]
        s.posix_rename(f"{INCOMING}/{name}.part", f"{INCOMING}/{name}")
        [result] = sandbox.importer.poll()
        assert (result.file, result.rows, result.updated, result.unknown, result.errors) == (name, 5, 5, 0, [])
        assert s.listdir(INCOMING) == []
        assert s.listdir("/incoming/processed") == [name]
    fields = sandbox.importer.fields().set_index("person_guid")
    assert fields.loc[known_guids[0], "lead_score"] == "50"
    assert sftp_file_mode(sandbox.sftp.local_path(f"/incoming/processed/{name}")) == 0o600


def test_unknown_guids_are_logged_never_created(sandbox, known_guids):
    stranger = "ffffffff-0000-4000-8000-000000000001"
    with sftp(sandbox) as s:
        s.putfo(io.BytesIO(score_csv([known_guids[0], stranger])), f"{INCOMING}/lead_scores_a.csv")
    [result] = sandbox.importer.poll()
    assert (result.updated, result.unknown, result.unknown_guids) == (1, 1, [stranger])
    assert stranger not in set(sandbox.importer.fields()["person_guid"])
    [line] = [json.loads(x) for x in sandbox.paths.import_log.read_text().splitlines()]
    assert line["file"] == "lead_scores_a.csv"
    assert line["unknown_guids"] == [stranger]
    assert {"rows", "updated", "unknown", "errors", "time"} <= set(line)


def test_latest_import_wins_and_processed_file_is_overwritten(sandbox, known_guids):
    name = "lead_scores_b.csv"
    with sftp(sandbox) as s:
        s.putfo(io.BytesIO(score_csv(known_guids[:3])), f"{INCOMING}/{name}")
        sandbox.importer.poll()
        s.putfo(io.BytesIO(score_csv(known_guids[1:2])), f"{INCOMING}/{name}")
        sandbox.importer.poll()
        assert s.listdir("/incoming/processed") == [name]
        with s.open(f"/incoming/processed/{name}") as fh:
            assert fh.read().decode().count("\n") == 2
    fields = sandbox.importer.fields().set_index("person_guid")
    assert len(fields) == 3
    assert fields.loc[known_guids[1], "lead_score"] == "50"  # first row of the second file


def test_only_mask_matches_in_the_watched_folder_are_imported(sandbox, known_guids):
    with sftp(sandbox) as s:
        s.putfo(io.BytesIO(score_csv(known_guids[:1])), "/test/incoming/lead_scores_t.csv")
        s.putfo(io.BytesIO(score_csv(known_guids[:1])), f"{INCOMING}/scores_other.csv")
        s.putfo(io.BytesIO(score_csv(known_guids[:1])), f"{INCOMING}/lead_scores_c.txt")
    assert sandbox.importer.poll() == []


def test_half_uploaded_file_under_the_final_name_is_imported_half(sandbox, known_guids):
    body = score_csv(known_guids[:10])
    cut = body[: body.index(b"\n", len(body) // 2) + 1]
    with sftp(sandbox) as s:
        s.putfo(io.BytesIO(cut), f"{INCOMING}/lead_scores_half.csv")
    [result] = sandbox.importer.poll()
    assert 0 < result.rows < 10


def test_file_without_person_guid_is_logged_as_error_and_moved(sandbox):
    with sftp(sandbox) as s:
        s.putfo(io.BytesIO(b"guid,score\nx,1\n"), f"{INCOMING}/lead_scores_bad.csv")
        [result] = sandbox.importer.poll()
        assert result.updated == 0
        assert "person_guid" in result.errors[0]
        assert s.listdir("/incoming/processed") == ["lead_scores_bad.csv"]


def test_background_polling_imports_without_a_call(sandbox, known_guids):
    import time

    sandbox.importer.start(0.05)
    try:
        with sftp(sandbox) as s:
            s.putfo(io.BytesIO(score_csv(known_guids[:2])), f"{INCOMING}/lead_scores_bg.csv")
        for _ in range(200):
            if sandbox.importer.log():
                break
            time.sleep(0.05)
    finally:
        sandbox.importer.stop()
    assert [e["file"] for e in sandbox.importer.log()] == ["lead_scores_bg.csv"]


# --- faults ---


def test_permission_denied_fault(sandbox):
    sandbox.sftp.faults.set("permission_denied")
    with sftp(sandbox) as s:
        with pytest.raises(PermissionError):
            s.putfo(io.BytesIO(b"a,b\n"), f"{INCOMING}/x.part")
        s.putfo(io.BytesIO(b"a,b\n"), f"{INCOMING}/x.part")
        assert s.listdir(INCOMING) == ["x.part"]


def test_disk_full_fault_fails_writes_after_n_bytes(sandbox):
    sandbox.sftp.faults.set("disk_full", after_bytes=100)
    with sftp(sandbox) as s:
        with pytest.raises(OSError):
            s.putfo(io.BytesIO(b"x" * 5000), f"{INCOMING}/big.part")
        s.putfo(io.BytesIO(b"x" * 50), f"{INCOMING}/small.part")
        assert s.stat(f"{INCOMING}/small.part").st_size == 50


def test_slow_fault_delays_but_delivers(sandbox):
    sandbox.sftp.faults.set("slow", seconds=0.2)
    with sftp(sandbox) as s:
        s.putfo(io.BytesIO(b"hello"), f"{INCOMING}/slow.part")
        assert s.stat(f"{INCOMING}/slow.part").st_size == 5
    assert [f["kind"] for f in sandbox.sftp.faults.fired] == ["slow"]


def test_drop_upload_fault_leaves_a_partial_file(sandbox):
    sandbox.sftp.faults.set("drop_upload", after_bytes=1000)
    with pytest.raises(DROPPED), sftp(sandbox) as s:
        s.putfo(io.BytesIO(b"y" * 100_000), f"{INCOMING}/cut.part")
    assert sandbox.sftp.local_path(f"{INCOMING}/cut.part").stat().st_size == 1000


def test_drop_rename_fault_keeps_the_part_file(sandbox):
    sandbox.sftp.faults.set("drop_rename", query="lead_scores_*.csv")
    with pytest.raises(DROPPED), sftp(sandbox) as s:
        s.putfo(io.BytesIO(b"a\n"), f"{INCOMING}/lead_scores_r.csv.part")
        s.posix_rename(f"{INCOMING}/lead_scores_r.csv.part", f"{INCOMING}/lead_scores_r.csv")
    assert sandbox.sftp.local_path(f"{INCOMING}/lead_scores_r.csv.part").exists()
    assert not sandbox.sftp.local_path(f"{INCOMING}/lead_scores_r.csv").exists()


def test_drop_after_files_fault(sandbox):
    sandbox.sftp.faults.set("drop_after_files", files=2)
    uploaded = []
    with pytest.raises(DROPPED), sftp(sandbox) as s:
        for i in range(4):
            s.putfo(io.BytesIO(b"z\n"), f"{INCOMING}/f{i}.part", confirm=False)
            uploaded.append(i)
    assert uploaded[:1] == [0]
    assert len(uploaded) < 4
    assert sorted(p.name for p in sandbox.sftp.local_path(INCOMING).iterdir()) == ["f0.part", "f1.part"]
