"""The sandbox's Slate query web service: ``GET /manage/query/run`` on 127.0.0.1, with fault switches.

Wire format as Slate's (BRIEF §2): ``{"row": [{...}, ...]}``, every value a string, NULL columns omitted, except for
the real-answer variants of ``dirt.WireDirt`` (offsets, fractions, GUID case and braces, JSON numbers and booleans,
present NULLs; ``wire_variants``). The instance may have a time zone (``instance_time``): stamps are served, and
``since``/``until`` compared, as its wall time. Auth is HTTP
Basic of the service account (401 otherwise) plus the per-query ``h`` (403); an unknown query GUID is 404. The custom
parameters of ``slate.queries.QUERY_PARAMS`` are typed; a value that does not parse is 400 with a message naming it.

Paging: rows are ordered by the query's key in the service's ``key_order``: SQL Server's ``uniqueidentifier`` order
by default, as real Slate serves an ``ORDER BY`` on a GUID column, or lower-cased text order as a switch (see
``slate.keyorder``); ``after`` compares the same way. A page holds the rows whose key is greater than ``after``, at
most ``min(limit, MAX_PAGE_ROWS)`` of them, except that rows sharing the page's last key (duplicate records, as
``TOP ... WITH TIES``) are always served together so that a cursor never splits them.

Sort orders are computed once at start; the rows inside a ``[since, until)`` window are computed once per window
(vectorized) and cached, so that a page costs a binary search plus a gather of its rows.

Control endpoints (same Basic auth): ``GET|POST|DELETE /_sandbox/faults`` (list, arm from a JSON body
``{"kind": ..., "count": 1, "query": ..., "page": ..., ...params}``, clear) and ``GET /_sandbox/requests``.
"""

from __future__ import annotations

import base64
import binascii
import bisect
import json
import secrets
import threading
import time
import uuid
from collections import OrderedDict
from dataclasses import dataclass
from datetime import date, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from leadscore.sandbox.config import FaultSwitches, SandboxCredentials
from leadscore.sandbox.dirt import WireDirt
from leadscore.sandbox.instance_time import localize_tables
from leadscore.sandbox.wire_variants import apply_wire_dirt
from leadscore.slate.keyorder import DEFAULT_KEY_ORDER, NIL_GUID, SQLSERVER_BYTE_SIGNIFICANCE, order_key_function
from leadscore.slate.queries import INTERACTIONS, LEADS, MAX_PAGE_ROWS, QUERY_PARAMS, RESERVED_PARAM_NAMES, QuerySpec
from leadscore.slate.wall_time import UTC_NAME, wall_time

QUERY_PATH = "/manage/query/run"
FAULTS_PATH = "/_sandbox/faults"
REQUESTS_PATH = "/_sandbox/requests"
WIRE_DATETIME = "%Y-%m-%dT%H:%M:%S"

_NEVER = np.iinfo(np.int64).max  # a missing timestamp: never inside any window
_ALWAYS = np.iinfo(np.int64).min
_CACHE_MAX_ROWS = 60_000_000  # row positions kept over all cached windows of one query (480 MB)

WEB_FAULTS: dict[str, str] = {
    "rate_limit": "429 Too Many Requests with Retry-After (param retry_after, seconds; default 1)",
    "error_500": "500 Internal Server Error with an HTML body",
    "error_503": "503 Service Unavailable with Retry-After (param retry_after; default 1)",
    "slow": "sleep (param seconds; default 2) before answering normally",
    "truncated_json": "status 200 but the JSON body is cut in half",
    "html_error": "status 200 with a text/html error page instead of JSON",
    "drop_connection": "close the socket without any answer",
    "drop_column": "omit a required column from every row (param column; default the first non-key required one)",
    "repeat_cursor": "ignore `after` once: serve the first page again",
}
_TERMINAL_FAULTS = ("rate_limit", "error_500", "error_503", "html_error", "drop_connection")

_HTML_ERROR = (
    "<!DOCTYPE html><html><head><title>Slate</title></head><body><h1>An error has occurred</h1>"
    "<p>The request could not be completed at this time. Please try again later.</p></body></html>"
)


class ParamError(ValueError):
    """A request parameter is missing, unknown or of the wrong type (answered with 400)."""


def _check_param_names() -> None:
    clash = RESERVED_PARAM_NAMES & set(QUERY_PARAMS)
    if clash:
        raise ValueError(f"custom query parameters use Slate's reserved names: {sorted(clash)}")


_check_param_names()


def parse_param(name: str, slate_type: str, raw: str, zone: str = UTC_NAME) -> Any:
    """Parse one custom parameter by its Slate type.

    Args:
        name: the parameter name (for the message).
        slate_type: ``datetime``, ``date``, ``int``, ``real``, ``uniqueidentifier``, ``bit`` or ``varchar``.
        raw: the query-string value (already known to be non-empty).
        zone: the instance's time zone: a naive datetime is its wall time, an aware one is converted to it.
    Returns:
        datetime (tz-naive wall time) for datetime/date, int, float, canonical lower-case GUID str, bool, or str.
    Raises:
        ParamError: the value does not parse as the type.
    """
    try:
        if slate_type in ("datetime", "date"):
            value = datetime.fromisoformat(raw.strip())
            if isinstance(value, datetime) and value.tzinfo is not None:
                value = wall_time(value, zone).to_pydatetime()
            return value
        if slate_type == "int":
            return int(raw.strip())
        if slate_type == "real":
            return float(raw.strip())
        if slate_type == "uniqueidentifier":
            return str(uuid.UUID(raw.strip()))
        if slate_type == "bit":
            if raw.strip() not in ("0", "1"):
                raise ValueError("expected 0 or 1")
            return raw.strip() == "1"
        return raw
    except ValueError as exc:
        hint = {
            "datetime": " (expected YYYY-MM-DDTHH:MM:SS or YYYY-MM-DD)",
            "date": " (expected YYYY-MM-DD)",
            "uniqueidentifier": " (expected a GUID)",
        }.get(slate_type, "")
        raise ParamError(f"parameter {name!r}={raw!r} is not a valid {slate_type}{hint}: {exc}") from exc


def _to_us(value: datetime | date) -> int:
    return int(np.datetime64(value, "us").astype(np.int64))


def _times_us(series: pd.Series) -> np.ndarray:
    values = pd.to_datetime(series).astype("datetime64[us]").to_numpy()
    out = values.astype(np.int64)
    out[np.isnat(values)] = _NEVER
    return out


def _format_us(values: np.ndarray) -> list[str | None]:
    strings = np.datetime_as_string(values.astype("datetime64[us]").astype("datetime64[s]"), unit="s")
    return [None if v == _ALWAYS else s for v, s in zip(values.tolist(), strings.tolist(), strict=True)]


def _flat_strings(series: pd.Series) -> pa.Array:
    """One contiguous large_string Arrow array of a column (``take`` on chunked arrays is several times slower)."""
    arr = pa.array(series.astype("string"))
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    return arr.cast(pa.large_string())


class _SortedKeys:
    """Read-only sequence view of the keys' sort keys (``slate.keyorder``) in sorted order (for ``bisect``)."""

    def __init__(self, keys: pa.Array, order: np.ndarray, sort_key: Any) -> None:
        self._keys = keys
        self._order = order
        self._sort_key = sort_key

    def __len__(self) -> int:
        return len(self._order)

    def __getitem__(self, i: int) -> str:
        return self._sort_key(self._keys[int(self._order[i])].as_py())


@dataclass(frozen=True)
class Page:
    """One answered page: the served columns and their values, plus where it sits in the window."""

    columns: list[str]
    values: list[pa.Array]  # one large_string array per column
    page_number: int
    window_rows: int

    @property
    def n_rows(self) -> int:
        return len(self.values[0]) if self.values else 0


class QueryTable:
    """One query's rows, pre-sorted by key, with vectorized window filtering and cursor paging.

    Args:
        spec: the query contract.
        frame: wire columns as nullable strings plus hidden typed ``_``-prefixed columns: ``_occurred``
            (interactions) or ``_created`` and ``_app_created`` (leads).
        cache_windows: how many ``[since, until)`` windows keep their filtered rows.
        key_order: ``sqlserver`` (SQL Server's ``uniqueidentifier`` order, as Slate) or ``text``.
    Raises:
        ValueError: the key or a hidden time column is missing, or the key order is unknown.
    """

    def __init__(
        self, spec: QuerySpec, frame: pd.DataFrame, cache_windows: int = 8, key_order: str = DEFAULT_KEY_ORDER
    ) -> None:
        self.spec = spec
        self.key_order = key_order
        self._sort_key = order_key_function(key_order)
        self.is_leads = spec.name == LEADS.name
        hidden = ["_created", "_app_created"] if self.is_leads else ["_occurred"]
        missing = [c for c in [spec.key, *hidden] if c not in frame.columns]
        if missing:
            raise ValueError(f"{spec.name} table lacks columns {missing}; columns present: {list(frame.columns)}")
        known = [c for c in spec.column_names if c in frame.columns and c != "updated"]
        extra = [c for c in frame.columns if not c.startswith("_") and c not in spec.column_names]
        self.wire_columns = known + extra
        keys = _flat_strings(frame[spec.key])
        keep = np.flatnonzero(~np.asarray(pc.is_null(keys)))
        self.null_key_rows = len(frame) - len(keep)  # dirt that can never be paged: not served
        self._keys = pc.utf8_lower(keys)
        kept = self._keys.take(pa.array(keep))
        sort_idx = _guid_sort_indices(kept, key_order)
        if sort_idx is None:  # keys that are not all canonical GUIDs (dirt): sort by the order's key function
            sort_idx = _sort_key_indices(kept, self._sort_key)
        self.order = keep[sort_idx]
        self._sorted_keys = _SortedKeys(self._keys, self.order, self._sort_key)
        self._arrays = {c: _flat_strings(frame[c]) for c in self.wire_columns}
        self._times = [_times_us(frame[c])[self.order] for c in hidden]
        self._cache: OrderedDict[tuple[int, int], np.ndarray] = OrderedDict()
        self._cache_size = cache_windows
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self.order)

    def window(self, since_us: int, until_us: int) -> np.ndarray:
        """Sorted positions (ascending) of the rows inside ``[since, until)``; cached per window."""
        key = (since_us, until_us)
        with self._lock:
            hit = self._cache.get(key)
            if hit is not None:
                self._cache.move_to_end(key)
                return hit
        mask = np.zeros(len(self.order), dtype=bool)
        for t in self._times:
            mask |= (t >= since_us) & (t < until_us)
        positions = np.flatnonzero(mask)
        with self._lock:
            self._cache[key] = positions
            # bounded by entries and by total size: windows over 25M interactions are up to 200 MB each
            while len(self._cache) > 1 and (
                len(self._cache) > self._cache_size or sum(len(v) for v in self._cache.values()) > _CACHE_MAX_ROWS
            ):
                self._cache.popitem(last=False)
        return positions

    def page(self, since_us: int, until_us: int, after: str | None, limit: int) -> Page:
        """The page of rows in ``[since, until)`` whose key is greater than ``after``, at most ``limit`` + ties.

        ``after`` is a canonical lower-case GUID or None (the first page). ``limit`` must be positive.
        """
        window = self.window(since_us, until_us)
        start = bisect.bisect_right(self._sorted_keys, self._sort_key(after)) if after else 0
        i = int(np.searchsorted(window, start, side="left"))
        j = min(i + limit, len(window))
        if 0 < j < len(window):
            last = self._sorted_keys[int(window[j - 1])]
            while j < len(window) and self._sorted_keys[int(window[j])] == last:
                j += 1
        sel = window[i:j]
        rows = pa.array(self.order[sel])
        columns = list(self.wire_columns)
        values = [self._arrays[c].take(rows) for c in columns]
        if self.is_leads:
            created, app = self._times[0][sel], self._times[1][sel]
            app_visible = app < until_us
            if "application_created" in columns:
                k = columns.index("application_created")
                values[k] = pc.if_else(pa.array(app_visible), values[k], pa.scalar(None, pa.large_string()))
            updated = np.maximum(np.where(created == _NEVER, _ALWAYS, created), np.where(app_visible, app, _ALWAYS))
            at = columns.index("tags") + 1 if "tags" in columns else len(columns)
            columns.insert(at, "updated")
            values.insert(at, pa.array(_format_us(updated), type=pa.large_string()))
        return Page(columns=columns, values=values, page_number=i // limit + 1, window_rows=len(window))


def render_rows(
    columns: list[str],
    values: list[pa.Array],
    include_nulls: bool = False,
    literal: dict[str, np.ndarray] | None = None,
) -> bytes:
    """The JSON body ``{"row": [...]}`` of a page; NULLs omitted (or served as "" when ``include_nulls``).

    ``literal[col]`` marks cells whose text is written as raw JSON (a number, ``true``, ``null``), not as a string.

    Built column-wise with Arrow string kernels (escape, prefix with the key, join non-null fragments per row), which
    is several times faster than json.dumps of a list of dicts; a column holding control characters is escaped by
    the json module instead.
    """
    n = len(values[0]) if values else 0
    if n == 0:
        return b'{"row":[]}'
    frags = []
    for name, arr in zip(columns, values, strict=True):
        arr = arr.cast(pa.large_string())
        if include_nulls:
            arr = pc.fill_null(arr, "")
        key = json.dumps(name, ensure_ascii=False) + ":"
        if pc.any(pc.match_substring_regex(arr, _CONTROL_CHARS)).as_py():
            frag = pa.array(
                [None if v is None else key + _encode_string(v) for v in arr.to_pylist()], type=pa.large_string()
            )
        else:
            escaped = pc.replace_substring(pc.replace_substring(arr, "\\", "\\\\"), '"', '\\"')
            frag = pc.binary_join_element_wise(_large(key + '"'), escaped, _large('"'), _large(""))
        raw = (literal or {}).get(name)
        if raw is not None and raw.any():
            frag = pc.if_else(pa.array(raw), pc.binary_join_element_wise(_large(key), arr, _large("")), frag)
        frags.append(frag)
    rows = pc.binary_join_element_wise(*frags, _large(","), null_handling="skip")
    return ('{"row":[{' + "},{".join(rows.to_pylist()) + "}]}").encode("utf-8")


_CONTROL_CHARS = "[\\x00-\\x1f]"
_encode_string = json.encoder.encode_basestring  # type: ignore[attr-defined]


def _large(text: str) -> pa.Scalar:
    return pa.scalar(text, type=pa.large_string())


def _sort_key_indices(keys: pa.Array, sort_key: Any) -> np.ndarray:
    """Stable sort order of arbitrary key strings by a ``slate.keyorder`` key function (the slow path, for dirt)."""
    values = keys.to_pylist()
    return np.array(sorted(range(len(values)), key=lambda i: sort_key(values[i])), dtype=np.int64)


def _guid_sort_indices(keys: pa.Array, key_order: str = DEFAULT_KEY_ORDER) -> np.ndarray | None:
    """Sort order of lower-case canonical GUID strings in ``key_order`` via 128-bit values, vectorized.

    Text order is the numeric order of the 16 bytes as displayed; SQL Server's order is the numeric order of the same
    bytes regrouped most significant first (``slate.keyorder.SQLSERVER_BYTE_SIGNIFICANCE``). Returns None when some
    key is not a canonical 36-character GUID (the caller sorts by the key function then).
    """
    n = len(keys)
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    keys = keys.cast(pa.large_string())
    if keys.null_count:
        return None
    offsets = np.frombuffer(keys.buffers()[1], dtype=np.int64)[keys.offset : keys.offset + n + 1]
    if not (np.diff(offsets) == 36).all():
        return None
    data = np.frombuffer(keys.buffers()[2], dtype=np.uint8)[offsets[0] : offsets[0] + 36 * n].reshape(n, 36)
    if not (data[:, [8, 13, 18, 23]] == ord("-")).all():
        return None
    hexchars = np.concatenate([data[:, 0:8], data[:, 9:13], data[:, 14:18], data[:, 19:23], data[:, 24:36]], axis=1)
    if key_order not in ("sqlserver", "text"):
        raise ValueError(f"unknown key_order {key_order!r}")
    try:  # callers pass lower-cased keys; fromhex would accept upper case too, in the same order
        raw = bytes.fromhex(hexchars.tobytes().decode("ascii"))
    except (ValueError, UnicodeDecodeError):
        return None
    if key_order == "sqlserver":  # the 16 bytes regrouped most significant first
        raw = np.frombuffer(raw, dtype=np.uint8).reshape(n, 16)[:, list(SQLSERVER_BYTE_SIGNIFICANCE)].tobytes()
    words = np.frombuffer(raw, dtype=">u8").reshape(n, 2)
    hi, lo = words[:, 0].astype(np.uint64), words[:, 1].astype(np.uint64)
    order = np.argsort(hi)
    sorted_hi, sorted_lo = hi[order], lo[order]
    tie = sorted_hi[1:] == sorted_hi[:-1]
    if tie.any() and (sorted_lo[1:][tie] != sorted_lo[:-1][tie]).any():  # equal high halves of different GUIDs
        order = np.lexsort((lo, hi))
    return order


def build_tables(
    leads: pd.DataFrame, interactions: pd.DataFrame, key_order: str = DEFAULT_KEY_ORDER, timezone: str = UTC_NAME
) -> dict[str, QueryTable]:
    """QueryTables of both queries from the generator's frames (see QueryTable for the columns and ``key_order``),
    with stamps in the wall time of the instance zone ``timezone`` (``instance_time``)."""
    leads, interactions = localize_tables(leads, interactions, timezone)
    return {
        LEADS.name: QueryTable(LEADS, leads, key_order=key_order),
        INTERACTIONS.name: QueryTable(INTERACTIONS, interactions, key_order=key_order),
    }


class _Reply(Exception):
    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or {}


class QueryWebService:
    """The HTTP server. Start it in a background thread (``start``) or in the foreground (``serve_forever``).

    Args:
        tables: QueryTables by query name.
        credentials: the sandbox's secrets (service account, query GUIDs and ``h``).
        end: the sandbox's "now": the default ``until``.
        host: bind address (127.0.0.1 only, by design).
        port: TCP port; 0 picks a free one.
        include_nulls: serve NULL columns as "" instead of omitting them (Slate's "Include NULL Values").
        timezone: the instance's zone; the tables must have been built with it (``build_tables``): since/until
            and the default ``until`` are its wall time.
        wire: the value formats of real answers to serve at their shares (``WireDirt``; None serves none).
    """

    def __init__(
        self,
        tables: dict[str, QueryTable],
        credentials: SandboxCredentials,
        end: datetime,
        host: str = "127.0.0.1",
        port: int = 0,
        include_nulls: bool = False,
        timezone: str = UTC_NAME,
        wire: WireDirt | None = None,
    ) -> None:
        missing = [name for name in tables if name not in credentials.queries]
        if missing:
            raise ValueError(f"credentials have no GUID/h for queries {missing}")
        self.tables = tables
        _ = self.key_order  # one order for every table, checked before serving
        self.credentials = credentials
        self.timezone = timezone
        self.end_us = _to_us(wall_time(end, timezone).to_pydatetime())
        self.include_nulls = include_nulls
        self.wire = wire or WireDirt.none()
        self.faults = FaultSwitches(WEB_FAULTS)
        self._log: list[dict[str, Any]] = []
        self._log_lock = threading.Lock()
        self._thread: threading.Thread | None = None
        handler = type("SlateHandler", (_Handler,), {"service": self})
        self.httpd = ThreadingHTTPServer((host, port), handler)
        self.httpd.daemon_threads = True

    @property
    def key_order(self) -> str:
        """How the tables order the paging key: ``sqlserver`` or ``text`` (one order for every table)."""
        orders = {t.key_order for t in self.tables.values()}
        if len(orders) != 1:
            raise ValueError(f"tables disagree on key_order: {sorted(orders)}")
        return orders.pop()

    @property
    def host(self) -> str:
        return str(self.httpd.server_address[0])

    @property
    def port(self) -> int:
        return int(self.httpd.server_address[1])

    @property
    def url(self) -> str:
        """Base URL, e.g. ``http://127.0.0.1:18080``."""
        return f"http://{self.host}:{self.port}"

    def start(self) -> QueryWebService:
        """Serve in a daemon thread; returns self."""
        self._thread = threading.Thread(target=self.httpd.serve_forever, name="slate-web", daemon=True)
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        """Serve in the calling thread until ``stop`` (or KeyboardInterrupt)."""
        self.httpd.serve_forever()

    def stop(self) -> None:
        """Stop serving and close the socket."""
        if self._thread is not None:
            self.httpd.shutdown()
            self._thread.join(timeout=5)
            self._thread = None
        self.httpd.server_close()

    def request_log(self) -> list[dict[str, Any]]:
        """Every query request so far: time, query, params (without ``h``), status, rows, fault."""
        with self._log_lock:
            return [dict(e) for e in self._log]

    def clear_request_log(self) -> None:
        with self._log_lock:
            self._log.clear()

    def _record(self, entry: dict[str, Any]) -> None:
        with self._log_lock:
            self._log.append(entry)

    # --- request handling (called from the handler thread) ---

    def check_basic(self, header: str | None) -> None:
        if not header or not header.startswith("Basic "):
            raise _Reply(401, "HTTP Basic authentication required", {"WWW-Authenticate": 'Basic realm="Slate"'})
        try:
            user, _, password = base64.b64decode(header[6:], validate=True).decode("utf-8").partition(":")
        except (binascii.Error, UnicodeDecodeError) as exc:
            raise _Reply(401, "malformed Basic credentials", {"WWW-Authenticate": 'Basic realm="Slate"'}) from exc
        ok_user = secrets.compare_digest(user.encode(), self.credentials.service_user.encode())
        ok_pw = secrets.compare_digest(password.encode(), self.credentials.service_password.encode())
        if not (ok_user and ok_pw):
            raise _Reply(401, "invalid service account credentials", {"WWW-Authenticate": 'Basic realm="Slate"'})

    def resolve(self, args: dict[str, str]) -> tuple[str, dict[str, Any]]:
        """Query name and typed params of a request; raises _Reply 404/403/400."""
        query_id = args.get("id", "")
        name = self.credentials.query_by_id(query_id) if query_id else None
        if name is None or name not in self.tables:
            raise _Reply(404, f"no query with id {query_id!r}")
        if not secrets.compare_digest(args.get("h", "").encode(), self.credentials.queries[name].h.encode()):
            raise _Reply(403, "invalid or missing h for this query")
        if args.get("cmd") != "service":
            raise _Reply(400, f"cmd must be 'service', got {args.get('cmd')!r}")
        if args.get("output", "json") != "json":
            raise _Reply(400, f"only output=json is served, got {args.get('output')!r}")
        params: dict[str, Any] = {}
        for pname, ptype in QUERY_PARAMS.items():
            raw = args.get(pname, "")
            params[pname] = parse_param(pname, ptype, raw, self.timezone) if raw.strip() else None
        if params["limit"] is not None and params["limit"] < 1:
            raise ParamError(f"parameter 'limit' must be at least 1, got {params['limit']}")
        return name, params

    def answer(self, name: str, params: dict[str, Any]) -> tuple[Page, bytes, list[str]]:
        since = _ALWAYS if params["since"] is None else _to_us(params["since"])
        until = self.end_us if params["until"] is None else _to_us(params["until"])
        limit = min(params["limit"] or MAX_PAGE_ROWS, MAX_PAGE_ROWS)
        table = self.tables[name]
        page = table.page(since, until, params["after"], limit)

        def matches(f: Any) -> bool:
            return f.query in (None, name) and f.page in (None, page.page_number)

        fired: list[str] = []
        slow = self.faults.take(("slow",), matches)
        if slow:
            fired.append("slow")
            time.sleep(float(slow.params.get("seconds", 2)))
        terminal = self.faults.take(_TERMINAL_FAULTS, matches)
        if terminal:
            fired.append(terminal.kind)
            raise _FaultReply(terminal, fired)
        if params["after"] not in (None, NIL_GUID) and self.faults.take(("repeat_cursor",), matches):
            fired.append("repeat_cursor")
            page = table.page(since, until, None, limit)
        drop = self.faults.take(("drop_column",), matches)
        columns, values = page.columns, page.values
        if drop:
            column = drop.params.get("column") or next(c for c in table.spec.required_columns if c != table.spec.key)
            fired.append(f"drop_column:{column}")
            keep = [i for i, c in enumerate(columns) if c != column]
            columns, values = [columns[i] for i in keep], [values[i] for i in keep]
        columns, values, literal = apply_wire_dirt(table.spec, columns, values, self.wire, self.timezone)
        body = render_rows(columns, values, self.include_nulls, literal)
        if self.faults.take(("truncated_json",), matches):
            fired.append("truncated_json")
            body = body[: len(body) // 2]
        return page, body, fired


class _FaultReply(Exception):
    def __init__(self, fault: Any, fired: list[str]) -> None:
        super().__init__(fault.kind)
        self.fault = fault
        self.fired = fired


class _Handler(BaseHTTPRequestHandler):
    service: QueryWebService
    protocol_version = "HTTP/1.1"
    server_version = "SlateSandbox/1.0"

    def log_message(self, format: str, *args: Any) -> None:  # quiet: the service keeps its own request log
        return

    def _send(self, status: int, body: bytes, content_type: str, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def _send_json(self, status: int, obj: Any, headers: dict[str, str] | None = None) -> None:
        self._send(status, json.dumps(obj, default=str).encode(), "application/json; charset=utf-8", headers)

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        if url.path == QUERY_PATH:
            self._query(url.query)
        elif url.path in (FAULTS_PATH, REQUESTS_PATH):
            self._control("GET", url.path)
        else:
            self._send_json(404, {"error": f"no such path {url.path}"})

    def do_POST(self) -> None:
        self._control("POST", urlsplit(self.path).path)

    def do_DELETE(self) -> None:
        self._control("DELETE", urlsplit(self.path).path)

    def _control(self, method: str, path: str) -> None:
        svc = self.service
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            svc.check_basic(self.headers.get("Authorization"))
        except _Reply as r:
            self._send_json(r.status, {"error": r.message}, r.headers)
            return
        if path == REQUESTS_PATH and method == "GET":
            self._send_json(200, {"requests": svc.request_log()})
        elif path == FAULTS_PATH and method == "GET":
            self._send_json(200, {"armed": svc.faults.armed(), "kinds": svc.faults.kinds})
        elif path == FAULTS_PATH and method == "DELETE":
            svc.faults.clear()
            self._send_json(200, {"armed": []})
        elif path == FAULTS_PATH and method == "POST":
            try:
                spec = json.loads(raw or b"{}")
                if not isinstance(spec, dict) or "kind" not in spec:
                    raise ValueError('body must be a JSON object with a "kind"')
                svc.faults.set(**spec)
            except (ValueError, TypeError) as exc:
                self._send_json(400, {"error": str(exc), "kinds": svc.faults.kinds})
                return
            self._send_json(200, {"armed": svc.faults.armed()})
        else:
            self._send_json(405 if path in (FAULTS_PATH, REQUESTS_PATH) else 404, {"error": f"{method} {path}"})

    def _query(self, query_string: str) -> None:
        svc = self.service
        multi = parse_qs(query_string, keep_blank_values=True)
        args = {k: v[-1] for k, v in multi.items()}
        entry: dict[str, Any] = {
            "time": time.time(),
            "query": None,
            "params": {k: v for k, v in args.items() if k != "h"},
            "status": None,
            "rows": None,
            "fault": [],
        }
        try:
            svc.check_basic(self.headers.get("Authorization"))
            name, params = svc.resolve(args)
            entry["query"] = name
            page, body, fired = svc.answer(name, params)
            entry.update(status=200, rows=page.n_rows, page=page.page_number, fault=fired)
            svc._record(entry)
            self._send(200, body, "application/json; charset=utf-8")
        except ParamError as exc:
            entry["status"] = 400
            svc._record(entry)
            self._send_json(400, {"error": str(exc)})
        except _Reply as r:
            entry["status"] = r.status
            if r.status != 401:
                entry["query"] = svc.credentials.query_by_id(args.get("id", ""))
            svc._record(entry)
            self._send_json(r.status, {"error": r.message}, r.headers)
        except _FaultReply as fr:
            entry["fault"] = fr.fired
            self._fault(fr.fault, entry)

    def _fault(self, fault: Any, entry: dict[str, Any]) -> None:
        svc = self.service
        kind = fault.kind
        if kind == "drop_connection":
            entry["status"] = None
            svc._record(entry)
            self.close_connection = True
            return
        retry = {"Retry-After": str(int(fault.params.get("retry_after", 1)))}
        status, ctype, headers = {
            "rate_limit": (429, "application/json; charset=utf-8", retry),
            "error_500": (500, "text/html; charset=utf-8", {}),
            "error_503": (503, "text/html; charset=utf-8", retry),
            "html_error": (200, "text/html; charset=utf-8", {}),
        }[kind]
        body = b'{"error":"rate limit exceeded"}' if kind == "rate_limit" else _HTML_ERROR.encode()
        entry["status"] = status
        svc._record(entry)
        self._send(status, body, ctype, headers)
