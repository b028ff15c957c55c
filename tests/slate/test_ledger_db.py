"""The shared delivery ledger in PostgreSQL: URL from the connection, records, the per-week advisory lock, and a
password that never shows (trust auth ignores it, so the tests can grep for it)."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg2
import pytest

from leadscore.settings import Settings
from leadscore.slate.delivery import deliver, ledger_for
from leadscore.slate.ledger import LedgerEntry, LedgerLockTimeout
from leadscore.slate.ledger_db import (
    LOCK_NAMESPACE,
    DatabaseLedger,
    LedgerConfigError,
    LedgerUnavailableError,
    ledger_url,
    ledger_url_from_airflow,
    week_key,
)
from tests.postgres import HOST, PORT, USER, connection_json, temporary_database
from tests.reliability.helpers import LogCollector, sftp_conn
from tests.slate.test_delivery import write_files

PASSWORD = "ledger-pw-7f3c9a"  # a test value: the trust-auth server ignores it
CONN_ID = "leadscore_ledger"


def _url(database: str, port: int = PORT) -> Any:
    return ledger_url(
        CONN_ID, conn_type="postgres", host=HOST, port=port, schema=database, login=USER, password=PASSWORD
    )


@pytest.fixture
def database() -> Iterator[str]:
    with temporary_database() as name:
        yield name


def entry(file: str, sha: str = "a" * 64, scored_on: str = "2026-11-22") -> LedgerEntry:
    return LedgerEntry(
        scored_on=scored_on,
        file=file,
        sha256=sha,
        rows=10,
        bytes=123,
        remote_path=f"/incoming/lead_scores/{file}",
        delivered_at="2026-11-23T00:00:00+00:00",
        attempt=1,
    )


def test_url_from_connection_fields_and_clear_errors() -> None:
    url = ledger_url(
        CONN_ID,
        conn_type="postgres",
        host="db",
        port=None,
        schema="airflow",
        login="u",
        password=PASSWORD,
        extra={"sslmode": "require", "unrelated": "x"},
    )
    assert url.drivername == "postgresql+psycopg2" and url.database == "airflow" and url.port is None
    assert dict(url.query) == {"sslmode": "require"}
    assert PASSWORD not in repr(DatabaseLedger(url, name=CONN_ID))
    with pytest.raises(LedgerConfigError, match=r"conn_type 'mysql'.*PostgreSQL"):
        ledger_url(CONN_ID, conn_type="mysql", host="db", port=None, schema="x", login=None, password=None)
    with pytest.raises(LedgerConfigError, match="needs a host and a database name"):
        ledger_url(CONN_ID, conn_type="postgres", host="db", port=None, schema="", login=None, password=None)


def test_a_missing_connection_names_the_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AIRFLOW_CONN_LEADSCORE_LEDGER_NOPE", raising=False)
    with pytest.raises(LedgerConfigError, match="LEADSCORE_LEDGER_CONN_ID is not defined"):
        ledger_url_from_airflow("leadscore_ledger_nope")


def test_records_round_trip_and_latest_wins(database: str) -> None:
    ledger = DatabaseLedger(_url(database), name=CONN_ID)
    assert ledger.entries() == []
    ledger.record(entry("a.csv"))
    ledger.record(entry("b.csv", scored_on="2026-11-29"))
    ledger.record(entry("a.csv", sha="b" * 64))
    other = DatabaseLedger(_url(database))  # another worker: same table, created once
    assert [e.file for e in other.entries()] == ["a.csv", "b.csv", "a.csv"]
    assert [e.file for e in other.entries("2026-11-29")] == ["b.csv"]
    assert other.entries()[0] == entry("a.csv")
    assert other.already_delivered("a.csv", "b" * 64) and not other.already_delivered("a.csv", "a" * 64)


def test_the_week_lock_is_an_advisory_lock_shared_by_every_ledger_of_the_database(database: str) -> None:
    first, second = DatabaseLedger(_url(database), name=CONN_ID), DatabaseLedger(_url(database), name=CONN_ID)
    with first.lock("2026-11-22"):
        with psycopg2.connect(host=HOST, port=PORT, user=USER, dbname=database) as conn, conn.cursor() as cur:
            cur.execute(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND classid = %s AND objid = %s",
                (LOCK_NAMESPACE, week_key("2026-11-22")),
            )
            assert cur.fetchone() == (1,)
        with pytest.raises(LedgerLockTimeout) as err, second.lock("2026-11-22", timeout=0.2, poll=0.05):
            pass
        assert "2026-11-22" in str(err.value) and "re-run" in str(err.value) and PASSWORD not in str(err.value)
        with second.lock("2026-11-29", timeout=0.2):  # another week is not blocked
            pass
    with second.lock("2026-11-22", timeout=0.2):  # released on exit
        pass


def test_an_unreachable_database_fails_clearly_without_the_password() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed_port = s.getsockname()[1]
    ledger = DatabaseLedger(_url("nowhere", port=closed_port), name=CONN_ID)
    with pytest.raises(LedgerUnavailableError) as err:
        ledger.entries()
    text = str(err.value)
    assert CONN_ID in text and f"127.0.0.1:{closed_port}" in text and PASSWORD not in text
    assert "***" in text


def test_delivery_with_the_shared_ledger_never_logs_the_password(
    sandbox: Any, database: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_SLATE_SFTP", json.dumps(sftp_conn(sandbox)))
    monkeypatch.setenv("AIRFLOW_CONN_LEADSCORE_LEDGER", connection_json(database, password=PASSWORD))
    settings = Settings(home=tmp_path / "home", ledger_conn_id=CONN_ID)
    manifest = write_files(sandbox, tmp_path / "home", 300, chunk_rows=200)
    with LogCollector() as logs:
        first = deliver(manifest, settings, backoff_seconds=0.01)
        again = deliver(manifest, settings, backoff_seconds=0.01)
    assert (first.sent, again.sent, again.skipped) == (2, 0, 2)
    assert [e.file for e in ledger_for(settings).entries()] == [f.name for f in manifest.files]
    assert not (tmp_path / "home" / "ledger").exists()  # nothing in local files
    assert PASSWORD not in logs.text and len(sandbox.importer.poll()) == 2
