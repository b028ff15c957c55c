"""A throwaway PostgreSQL database on the local server (127.0.0.1:5432, user postgres, trust auth) for one test."""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

HOST, PORT, USER = "127.0.0.1", 5432, "postgres"


def _admin_connect():
    import psycopg2

    return psycopg2.connect(host=HOST, port=PORT, user=USER, dbname="postgres", connect_timeout=5)


def require_postgres() -> None:
    """Skip (fail under CI, where .ci/run provides the server) when the local PostgreSQL does not answer."""
    import psycopg2

    try:
        _admin_connect().close()
    except psycopg2.OperationalError as exc:
        message = f"no PostgreSQL on {HOST}:{PORT} for user {USER} ({str(exc).strip()})"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)


@contextmanager
def temporary_database(prefix: str = "reports_ledger") -> Iterator[str]:
    """Create a uniquely named database, yield its name, drop it (closing any session left on it)."""
    require_postgres()
    name = f"{prefix}_{secrets.token_hex(6)}"
    admin = _admin_connect()
    admin.autocommit = True
    try:
        with admin.cursor() as cur:
            cur.execute(f'CREATE DATABASE "{name}"')
        yield name
    finally:
        with admin.cursor() as cur:
            cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


def connection_json(database: str, password: str = "") -> str:
    """An ``AIRFLOW_CONN_*`` value (JSON) for ``database``; trust auth ignores the password, which tests grep for."""
    return json.dumps(
        {"conn_type": "postgres", "host": HOST, "port": PORT, "login": USER, "password": password, "schema": database}
    )
