"""Promise 5: no one gets in, nothing leaks.

Host keys are verified, wrong passwords fail, the sandbox listens on 127.0.0.1 only, no secret reaches logs, MLflow,
reports, score files, error messages or the repository, score files and reports carry no personal fields. (That
every file is owner-only is proved by processes started with umask 022: test_crash.py and test_leaks.py; this module's
shared run is in-process and sets the umask itself.)
"""

from __future__ import annotations

import json
import socket
from pathlib import Path
from typing import Any

import asyncssh
import pandas as pd
import pytest

from leadscore.model import registry
from leadscore.scoring.files import read_manifest
from leadscore.scoring.score import score_file_columns
from leadscore.slate.delivery import DeliveryAuthError, HostKeyError, deliver, ledger_for
from leadscore.slate.errors import SlateAuthError
from tests.reliability.helpers import client_for, sandbox_secrets, sftp_conn

ROOT = Path(__file__).resolve().parents[2]
PERSONAL = ("first_name", "last_name", "email")


def all_files(root: Path) -> list[Path]:
    return [p for p in sorted(root.rglob("*")) if p.is_file()]


def test_no_secret_in_logs_mlflow_reports_scores_or_any_file_of_the_run(pipeline: Any) -> None:
    secrets = sandbox_secrets(pipeline.sandbox)
    assert "slate" in pipeline.logs and "scored" in pipeline.logs  # the collector really saw the run's logs
    files = all_files(pipeline.settings.home_abs)
    assert any(p.suffix == ".csv" for p in files) and any("mlflow" in p.parts for p in files)
    client = registry._client(pipeline.settings)
    run = client.get_run(pipeline.training["run_id"])
    version = client.get_model_version(pipeline.settings.model_name, pipeline.training["version"])
    logged = json.dumps([run.data.params, run.data.tags, version.tags])
    assert "data.as_of" in logged  # params were really logged
    for secret in secrets:
        assert secret not in pipeline.logs
        assert secret not in logged
        hits = [str(p) for p in files if secret.encode() in p.read_bytes()]  # includes mlflow.db, reports, scores
        assert hits == []


def personal_values(sandbox: Any) -> dict[str, set[str]]:
    leads = pd.read_parquet(sandbox.paths.leads, columns=list(PERSONAL))
    return {c: {v for v in leads[c].dropna().astype(str) if len(v) >= 3} for c in PERSONAL}


def test_score_files_reports_and_extracts_carry_no_personal_fields(pipeline: Any) -> None:
    values = personal_values(pipeline.sandbox)
    assert len(values["email"]) > 1000
    manifest = read_manifest(Path(pipeline.scored["manifest"]))
    for chunk in manifest.files:
        frame = pd.read_csv(manifest.path(chunk.name), dtype=str, keep_default_na=False)
        assert list(frame.columns) == score_file_columns(pipeline.settings.horizon_days)  # GUID is the only id
        cells = set(frame.drop(columns=["person_guid"]).to_numpy().ravel())
        for column in PERSONAL:
            assert not cells & values[column], column
    emails = [e.encode() for e in values["email"]]
    full_names = {f"{f} {last}".encode() for f, last in _name_pairs(pipeline.sandbox)}
    for path in all_files(pipeline.settings.home_abs):
        if "artifacts" in path.parts and path.suffix == ".py":
            continue  # MLflow's copy of our source code
        data = path.read_bytes()
        assert not any(e in data for e in emails), path
        if path.suffix in (".csv", ".json", ".html", ".md", ".txt", ".jsonl"):
            assert not any(n in data for n in full_names), path
    for parquet in pipeline.settings.extracts_dir.rglob("*.parquet"):
        assert not set(PERSONAL) & set(pd.read_parquet(parquet).columns)


def _name_pairs(sandbox: Any) -> set[tuple[str, str]]:
    leads = pd.read_parquet(sandbox.paths.leads, columns=["first_name", "last_name"]).dropna()
    return set(zip(leads["first_name"].astype(str), leads["last_name"].astype(str), strict=True))


def test_repository_holds_no_sandbox_secret_and_ignores_env(sandbox: Any) -> None:
    secrets = [s.encode() for s in sandbox_secrets(sandbox)]
    roots = [ROOT / d for d in ("dags", "include", "plugins", "tests", "docs") if (ROOT / d).exists()]
    files = [p for r in roots for p in r.rglob("*") if p.is_file() and "__pycache__" not in p.parts]
    files += [p for p in ROOT.iterdir() if p.is_file() and p.name != ".env"]
    assert len(files) > 50
    assert [str(p) for p in files if any(s in p.read_bytes() for s in secrets)] == []
    ignored = (ROOT / ".gitignore").read_text().split()
    assert ".env" in ignored


def test_changed_sftp_host_key_fails_before_any_upload(
    pipeline: Any, sandbox: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    manifest = read_manifest(Path(pipeline.scored["manifest"]))
    settings = pipeline.settings.replace(home=tmp_path / "home")
    conn = sftp_conn(sandbox)
    conn["extra"]["host_key"] = asyncssh.generate_private_key("ssh-ed25519").export_public_key().decode().strip()
    monkeypatch.setenv("AIRFLOW_CONN_SLATE_SFTP", json.dumps(conn))
    with pytest.raises(HostKeyError, match="nothing was uploaded"):
        deliver(manifest, settings, backoff_seconds=5.0)  # no retry: a retry would sleep first
    assert list((sandbox.paths.sftp_root / "incoming/lead_scores").iterdir()) == []
    assert ledger_for(settings).entries() == []


def test_wrong_sftp_password_fails_without_leaking_it(
    pipeline: Any, sandbox: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    manifest = read_manifest(Path(pipeline.scored["manifest"]))
    settings = pipeline.settings.replace(home=tmp_path / "home")
    conn = sftp_conn(sandbox)
    conn["password"] = "wrong-password-0123456789"
    monkeypatch.setenv("AIRFLOW_CONN_SLATE_SFTP", json.dumps(conn))
    with pytest.raises(DeliveryAuthError) as info:
        deliver(manifest, settings, backoff_seconds=5.0)
    message = str(info.value)
    assert "refused the credentials" in message and "wrong-password-0123456789" not in message
    assert all(s not in message for s in sandbox_secrets(sandbox))
    assert list((sandbox.paths.sftp_root / "incoming/lead_scores").iterdir()) == []


def test_wrong_web_service_password_fails_without_leaking_it(sandbox: Any) -> None:
    client = client_for(sandbox, password="wrong-password-0123456789")
    with pytest.raises(SlateAuthError) as info:
        client.fetch_all("leads", None, None, 100)
    message = str(info.value)
    assert info.value.status == 401 and "wrong-password-0123456789" not in message
    assert all(s not in message for s in sandbox_secrets(sandbox))


def _non_loopback_address() -> str | None:
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.connect(("192.0.2.1", 9))  # no packet is sent: this only picks the outgoing interface
            address = s.getsockname()[0]
    except OSError:
        return None
    return None if address.startswith("127.") else address


def test_sandbox_servers_bind_loopback_only(sandbox: Any) -> None:
    assert sandbox.web.httpd.server_address[0] == "127.0.0.1"
    assert sandbox.sftp.host == "127.0.0.1"
    bound = {sock.getsockname()[0] for sock in sandbox.sftp._server.sockets}
    assert bound == {"127.0.0.1"}
    address = _non_loopback_address()
    if address is None:
        pytest.skip("this machine has no non-loopback IPv4 address to try")
    for port in (sandbox.web.port, sandbox.sftp_port):
        with pytest.raises(OSError), socket.create_connection((address, port), timeout=2):
            pass
