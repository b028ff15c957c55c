"""The shared delivery ledger: the same records and per-week lock as :mod:`leadscore.slate.ledger`, in PostgreSQL.

On a team stack, deliveries of one week may start on two workers on two hosts, where a lock file under a local
``LEADSCORE_HOME`` stops nothing. Here the lock is a PostgreSQL session advisory lock keyed by the scoring date
(``pg_advisory_lock(<LeadScore namespace>, <YYYYMMDD>)``, visible in ``pg_locks``), and the records are rows of the
table ``leadscore_deliveries`` (append-only, one per delivered chunk), through SQLAlchemy Core.

The database comes from the Airflow Connection named by ``Settings.ledger_conn_id`` (conn_type ``postgres``), so its
password lives where Airflow keeps secrets and is never logged: messages show the URL with the password masked. The
lock lives as long as the database session that took it: a worker that dies releases it.
"""

from __future__ import annotations

import time
import zlib
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import asdict, fields
from datetime import date
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    Identity,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    create_engine,
    func,
    insert,
    select,
)
from sqlalchemy.engine import URL, Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.pool import NullPool

from leadscore import faults
from leadscore.slate.ledger import LedgerEntry, LedgerLockTimeout, LedgerReads

TABLE_NAME = "leadscore_deliveries"
# First key of every LeadScore advisory lock (the second is the date as YYYYMMDD, or 0 for creating the table).
LOCK_NAMESPACE = zlib.crc32(b"leadscore.delivery") & 0x7FFFFFFF
_CONNECT_TIMEOUT_S = 10
# Extras of the connection passed on to the driver (libpq's names); any other extra is ignored.
_DRIVER_EXTRAS = ("sslmode", "sslrootcert", "sslcert", "sslkey", "application_name", "connect_timeout")

_metadata = MetaData()
deliveries = Table(
    TABLE_NAME,
    _metadata,
    Column("id", BigInteger, Identity(), primary_key=True),
    Column("scored_on", String(10), nullable=False, index=True),
    Column("file", String(255), nullable=False),
    Column("sha256", String(64), nullable=False),
    Column("rows", Integer, nullable=False),
    Column("bytes", BigInteger, nullable=False),
    Column("remote_path", Text, nullable=False),
    Column("delivered_at", String(32), nullable=False),
    Column("attempt", Integer, nullable=False),
)
_ENTRY_FIELDS = tuple(f.name for f in fields(LedgerEntry))


class LedgerConfigError(ValueError):
    """The ledger's connection is not a usable PostgreSQL connection."""


class LedgerUnavailableError(RuntimeError):
    """The ledger's database could not be reached or refused a statement."""


def ledger_url(
    conn_id: str,
    *,
    conn_type: str | None,
    host: str | None,
    port: int | None,
    schema: str | None,
    login: str | None,
    password: str | None,
    extra: Mapping[str, Any] | None = None,
) -> URL:
    """The SQLAlchemy URL (psycopg2 driver) of a PostgreSQL connection's fields.

    Args:
        conn_id: the connection's id, for messages.
        conn_type, host, port, schema, login, password, extra: the Airflow Connection's fields; ``schema`` is the
            database name; extras named like libpq's options (``sslmode`` ...) go to the driver.
    Raises:
        LedgerConfigError: not a postgres connection, or no host or database; the message names the connection.
    """
    if conn_type not in ("postgres", "postgresql"):
        raise LedgerConfigError(
            f"connection {conn_id!r} (LEADSCORE_LEDGER_CONN_ID) has conn_type {conn_type!r}; the shared delivery "
            "ledger needs a PostgreSQL connection, e.g. AIRFLOW_CONN_LEADSCORE_LEDGER=postgresql://user:pw@host:5432/db"
        )
    if not host or not schema:
        raise LedgerConfigError(
            f"connection {conn_id!r} (LEADSCORE_LEDGER_CONN_ID) needs a host and a database name (the URI's path)"
        )
    query = {k: str(v) for k, v in (extra or {}).items() if k in _DRIVER_EXTRAS}
    return URL.create(
        "postgresql+psycopg2",
        username=login or None,
        password=password or None,
        host=host,
        port=port or None,
        database=schema,
        query=query,
    )


def ledger_url_from_airflow(conn_id: str) -> URL:
    """The URL of the Airflow Connection ``conn_id`` (from ``AIRFLOW_CONN_*``, a secrets backend or the metadata DB).

    Raises:
        LedgerConfigError: the connection is missing or not a PostgreSQL connection.
    """
    from airflow.sdk import BaseHook  # Airflow only where a shared ledger is configured

    try:
        conn = BaseHook.get_connection(conn_id)
    except Exception as exc:  # Airflow's not-found error differs between its versions
        raise LedgerConfigError(
            f"connection {conn_id!r} named by LEADSCORE_LEDGER_CONN_ID is not defined ({type(exc).__name__}); define "
            f"it (e.g. AIRFLOW_CONN_{conn_id.upper()}=postgresql://user:pw@host:5432/db) or unset the setting to "
            "keep the ledger in local files"
        ) from exc
    return ledger_url(
        conn_id,
        conn_type=conn.conn_type,
        host=conn.host,
        port=conn.port,
        schema=conn.schema,
        login=conn.login,
        password=conn.password,
        extra=conn.extra_dejson,
    )


def week_key(scored_on: str) -> int:
    """The advisory lock's second key of an ISO scoring date: ``2025-01-12`` -> ``20250112``.

    Raises:
        ValueError: ``scored_on`` is not an ISO date.
    """
    return int(date.fromisoformat(scored_on).strftime("%Y%m%d"))


class DatabaseLedger(LedgerReads):
    """The delivery ledger and per-week lock in a PostgreSQL database (same interface as ``DeliveryLedger``)."""

    def __init__(self, url: URL, name: str = "") -> None:
        """Args: url: SQLAlchemy URL of the database; name: what messages call it (e.g. the connection id)."""
        self.url = url
        self.label = f"{name or 'ledger'} ({url.render_as_string(hide_password=True)})"
        # NullPool: every use opens its own session, so a lock's session is never shared or handed on by a pool.
        self.engine: Engine = create_engine(
            url, poolclass=NullPool, connect_args={"connect_timeout": _CONNECT_TIMEOUT_S}
        )
        self._table_ready = False

    def __repr__(self) -> str:
        return f"DatabaseLedger({self.label})"

    def _unavailable(self, exc: SQLAlchemyError, what: str, then: str = "") -> LedgerUnavailableError:
        reason = getattr(exc, "orig", None) or exc
        text = str(reason).strip().splitlines()[0] if str(reason).strip() else type(reason).__name__
        return LedgerUnavailableError(
            f"the delivery ledger database {self.label} failed while {what}: {text}. Check that the database is up "
            f"and that the connection's login may create and write the table {TABLE_NAME}{then}"
        )

    def ensure_table(self) -> None:
        """Create ``leadscore_deliveries`` when missing (under an advisory lock, so concurrent first uses agree).

        Raises:
            LedgerUnavailableError: the database cannot be reached or refused the statement.
        """
        if self._table_ready:
            return
        try:
            with self.engine.begin() as conn:
                conn.execute(select(func.pg_advisory_xact_lock(LOCK_NAMESPACE, 0)))
                _metadata.create_all(conn, checkfirst=True)
        except SQLAlchemyError as exc:
            raise self._unavailable(exc, f"creating the table {TABLE_NAME}") from exc
        self._table_ready = True

    def entries(self, scored_on: str | None = None) -> list[LedgerEntry]:
        """Every recorded delivery, oldest first, optionally of one ISO scoring date only."""
        self.ensure_table()
        query = select(*(deliveries.c[name] for name in _ENTRY_FIELDS)).order_by(deliveries.c.id)
        if scored_on is not None:
            query = query.where(deliveries.c.scored_on == scored_on)
        try:
            with self.engine.connect() as conn:
                rows = conn.execute(query).all()
        except SQLAlchemyError as exc:
            raise self._unavailable(exc, "reading the ledger") from exc
        return [LedgerEntry(**row._asdict()) for row in rows]

    def record(self, entry: LedgerEntry) -> None:
        """Insert one entry (committed before returning)."""
        self.ensure_table()
        try:
            with self.engine.begin() as conn:
                conn.execute(insert(deliveries).values(**asdict(entry)))
        except SQLAlchemyError as exc:
            then = (
                f"; {entry.file} reached {entry.remote_path} but is not recorded, so a re-run sends it again: check "
                "with Slate whether it was imported before re-running"
            )
            raise self._unavailable(exc, f"recording the delivery of {entry.file}", then) from exc

    @contextmanager
    def lock(self, scored_on: str, timeout: float = 300.0, poll: float = 0.2) -> Iterator[None]:
        """Hold the delivery lock of one scoring date, across every process that uses this database.

        Args:
            scored_on: ISO scoring date.
            timeout: seconds to wait for another holder before giving up.
            poll: seconds between attempts.
        Raises:
            LedgerLockTimeout: the lock was not free within ``timeout``.
            LedgerUnavailableError: the database cannot be reached.
        """
        key = week_key(scored_on)
        self.ensure_table()
        deadline = time.monotonic() + timeout
        try:
            conn = self.engine.connect()
        except SQLAlchemyError as exc:
            raise self._unavailable(exc, f"taking the delivery lock of {scored_on}") from exc
        waited = False
        try:
            while True:
                try:
                    taken = conn.execute(select(func.pg_try_advisory_lock(LOCK_NAMESPACE, key))).scalar_one()
                    conn.commit()  # a session lock outlives the transaction: leave none open while delivering
                except SQLAlchemyError as exc:
                    raise self._unavailable(exc, f"taking the delivery lock of {scored_on}") from exc
                if taken:
                    break
                if time.monotonic() >= deadline:
                    raise LedgerLockTimeout(
                        f"another delivery of the scores of {scored_on} still holds its lock in {self.label} after "
                        f"{timeout:.0f} s; wait for it to finish (see the other run's log) and re-run: the re-run "
                        "sends only what is missing"
                    )
                if not waited:
                    waited = True
                    faults.point("lock.waiting")
                time.sleep(poll)
            try:
                yield
            finally:
                try:
                    conn.execute(select(func.pg_advisory_unlock(LOCK_NAMESPACE, key)))
                    conn.commit()
                except SQLAlchemyError:
                    pass  # the session is gone, and its lock with it
        finally:
            conn.close()
