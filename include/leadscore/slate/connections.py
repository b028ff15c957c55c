"""Configuration of the Slate query web-service client, built from the fields of the ``slate_api`` connection.

The Airflow adapter passes an Airflow Connection's fields to :func:`api_config_from_connection`; this module itself
imports nothing from Airflow, so the CLI and the tests build the same configuration from plain values.

Expected connection (see ``.env.example``)::

    conn_type: http            host: <instance>.technolutions.net   schema: https (the URL scheme)
    login / password: the Service Account of a "Username" grantee (HTTP Basic auth)
    extra: {"queries": {"leads": {"id": "<query GUID>", "h": "<hash>"}, "interactions": {...}},
            optional: "connect_timeout", "read_timeout", "max_retries", "backoff", "max_backoff",
            "key_order" ("sqlserver", the default and what Slate serves, or "text")}
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from leadscore.slate.errors import SlateConfigError
from leadscore.slate.keyorder import DEFAULT_KEY_ORDER, KEY_ORDERS
from leadscore.slate.queries import QUERIES

_SCHEMES = ("http", "https")
# Tunables that may be set in the connection's extras, with their types.
_TUNABLES: dict[str, type] = {
    "connect_timeout": float,
    "read_timeout": float,
    "max_retries": int,
    "backoff": float,
    "max_backoff": float,
}


@dataclass(frozen=True)
class QueryAuth:
    """The GUID of a query exposed as a web service and its ``h`` hash (a secret)."""

    id: str
    h: str = field(repr=False)

    def __repr__(self) -> str:
        return f"QueryAuth(id={self.id!r}, h='***')"


@dataclass(frozen=True)
class SlateApiConfig:
    """Everything the client needs to call Slate's query web service.

    Attributes:
        base_url: scheme + host (+ port) of the instance, no trailing slash, e.g. ``https://x.technolutions.net``.
        username, password: HTTP Basic auth of the Service Account.
        queries: query name (``leads``, ``interactions``) -> its GUID and ``h``.
        connect_timeout, read_timeout: seconds per request (``requests`` timeouts).
        max_retries: retries of one page after its first attempt on transient failures.
        backoff, max_backoff: base and cap (seconds) of the exponential backoff; also the cap of ``Retry-After``.
        key_order: how the server orders the paging key: ``sqlserver`` (the default: SQL Server's
            ``uniqueidentifier`` order, which every Slate query ordering by a GUID column gives) or ``text``
            (lower-case string order: a service built on another database, or a query ordering by a string cast).
    """

    base_url: str
    username: str
    password: str = field(repr=False)
    queries: dict[str, QueryAuth]
    connect_timeout: float = 10.0
    read_timeout: float = 120.0
    max_retries: int = 5
    backoff: float = 1.0
    max_backoff: float = 60.0
    key_order: str = DEFAULT_KEY_ORDER

    def __post_init__(self) -> None:
        if not self.base_url:
            raise SlateConfigError("slate_api: base URL (host) is empty")
        if not self.username:
            raise SlateConfigError("slate_api: 'login' (the Service Account user name) is empty")
        if not self.password:
            raise SlateConfigError("slate_api: 'password' is empty")
        if self.connect_timeout <= 0 or self.read_timeout <= 0:
            raise SlateConfigError("slate_api: connect_timeout and read_timeout must be positive seconds")
        if self.max_retries < 0:
            raise SlateConfigError(f"slate_api: max_retries must be >= 0, got {self.max_retries}")
        if self.backoff < 0 or self.max_backoff < 0:
            raise SlateConfigError("slate_api: backoff and max_backoff must be >= 0 seconds")
        if self.key_order not in KEY_ORDERS:
            raise SlateConfigError(
                f"slate_api: extras key_order must be one of {', '.join(KEY_ORDERS)}, got {self.key_order!r}"
            )

    def __repr__(self) -> str:
        return (
            f"SlateApiConfig(base_url={self.base_url!r}, username={self.username!r}, password='***', "
            f"queries={self.queries!r}, connect_timeout={self.connect_timeout}, read_timeout={self.read_timeout}, "
            f"max_retries={self.max_retries}, backoff={self.backoff}, max_backoff={self.max_backoff}, "
            f"key_order={self.key_order!r})"
        )

    __str__ = __repr__

    def query_auth(self, name: str) -> QueryAuth:
        """The GUID and ``h`` of query ``name``; SlateConfigError naming the extras key when it is not configured."""
        try:
            return self.queries[name]
        except KeyError:
            raise SlateConfigError(
                f"slate_api: extras 'queries' has no entry {name!r} (configured: {sorted(self.queries)}); "
                f'add "{name}": {{"id": "<query GUID>", "h": "<hash>"}}'
            ) from None


def _base_url(conn_type: str | None, host: str | None, port: int | None, schema: str | None, extra: Mapping) -> str:
    host = (host or "").strip()
    if not host:
        raise SlateConfigError("slate_api: 'host' is empty; set it to your instance, e.g. x.technolutions.net")
    if "://" in host:
        parts = urlsplit(host)
        if parts.scheme not in _SCHEMES or not parts.hostname:
            raise SlateConfigError(f"slate_api: 'host' {host!r} is not an http(s) URL")
        netloc = parts.netloc.rsplit("@", 1)[-1]  # never keep credentials written into the host
        if port and not parts.port:
            netloc = f"{netloc}:{port}"
        return f"{parts.scheme}://{netloc}{parts.path}".rstrip("/")
    scheme = str(extra.get("scheme") or "").lower()
    if not scheme:
        for candidate in (schema, conn_type):
            if candidate and candidate.lower() in _SCHEMES:
                scheme = candidate.lower()
                break
    scheme = scheme or "https"
    if scheme not in _SCHEMES:
        raise SlateConfigError(f"slate_api: scheme {scheme!r} is not http or https")
    netloc = f"{host}:{int(port)}" if port else host
    return f"{scheme}://{netloc}"


def _queries(extra: Mapping) -> dict[str, QueryAuth]:
    raw = extra.get("queries")
    if raw is None:
        raise SlateConfigError(
            "slate_api: extras lack 'queries'; set "
            '{"queries": {"leads": {"id": ..., "h": ...}, "interactions": {"id": ..., "h": ...}}}'
        )
    raw = _json_object(raw, "extras 'queries'", "an object of query name -> {id, h}")
    out: dict[str, QueryAuth] = {}
    for name in QUERIES:
        entry = raw.get(name)
        if entry is None:
            raise SlateConfigError(f"slate_api: extras 'queries' lacks the query {name!r}")
        if not isinstance(entry, Mapping):
            raise SlateConfigError(f"slate_api: extras 'queries.{name}' must be an object with 'id' and 'h'")
        for key in ("id", "h"):
            if not str(entry.get(key) or "").strip():
                raise SlateConfigError(f"slate_api: extras 'queries.{name}.{key}' is missing or empty")
        out[name] = QueryAuth(id=str(entry["id"]).strip(), h=str(entry["h"]).strip())
    return out


def _json_object(value: Any, what: str, expected: str) -> Mapping[str, Any]:
    """``value`` as a mapping: URI-style connections carry extras as JSON strings."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError as exc:
            raise SlateConfigError(f"slate_api: {what} is not valid JSON: {exc.msg}") from None
    if not isinstance(value, Mapping):
        raise SlateConfigError(f"slate_api: {what} must be {expected}")
    return value


def api_config_from_connection(
    conn_type: str | None,
    host: str | None,
    port: int | None,
    schema: str | None,
    login: str | None,
    password: str | None,
    extra: Mapping[str, Any] | str | None,
) -> SlateApiConfig:
    """Build the client configuration from the fields of the ``slate_api`` connection.

    Args:
        conn_type, host, port, schema, login, password: the Connection's fields. ``host`` may be a bare host name or
            a full ``http(s)://`` URL; otherwise the scheme comes from extras ``scheme``, then ``schema``, then
            ``conn_type`` when either is ``http``/``https``, else ``https``.
        extra: the Connection's extras (a dict or its JSON text) with ``queries`` and optional tunables.
    Returns:
        A SlateApiConfig.
    Raises:
        SlateConfigError: a field is missing or invalid; the message names it.
    """
    if extra is None or extra == "":
        extra = {}
    extra = _json_object(extra, "extras", "a JSON object")
    tunables: dict[str, Any] = {}
    for name, kind in _TUNABLES.items():
        if extra.get(name) not in (None, ""):
            try:
                tunables[name] = kind(extra[name])
            except (TypeError, ValueError):
                raise SlateConfigError(f"slate_api: extras {name!r}={extra[name]!r} is not a {kind.__name__}") from None
    if extra.get("key_order"):
        tunables["key_order"] = str(extra["key_order"]).strip().lower()
    if not (login or "").strip():
        raise SlateConfigError("slate_api: 'login' is empty; set the Service Account user name")
    if not password:
        raise SlateConfigError("slate_api: 'password' is empty; set the Service Account password")
    return SlateApiConfig(
        base_url=_base_url(conn_type, host, port, schema, extra),
        username=(login or "").strip(),
        password=password,
        queries=_queries(extra),
        **tunables,
    )
