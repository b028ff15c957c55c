"""Client of Slate's query web service: paged, retried, and strict about every answer.

Wire (one page)::

    GET {base}/manage/query/run?id=<GUID>&cmd=service&output=json&h=<hash>
        &since=YYYY-MM-DDTHH:MM:SS&until=YYYY-MM-DDTHH:MM:SS&after=<last key>&limit=N      (HTTP Basic auth)
    -> 200 application/json {"row": [{"col": "value", ...}, ...]}   (values strings, NULL columns omitted)

``since``/``until`` are the instance's wall time (``LEADSCORE_SLATE_TIMEZONE``) of each UTC bound. Values as real
instances send them are accepted at this boundary: a JSON number is kept as its exact text (``12``, ``1.50``), a
boolean becomes ``"true"``/``"false"``, a ``null`` (Slate's "Include NULL Values") is an omitted column. A JSON object
or array in one of the query's columns is a query built differently from the contract (a subquery exported as JSON):
the answer is refused with an error naming the column, since every row of such a column would be unusable; in an
unexpected extra column (dropped anyway) it is kept as its JSON text.

Rows are ordered by the query's key (``SlateApiConfig.key_order``: SQL Server's ``uniqueidentifier`` order by default,
see ``slate.keyorder``); ``after`` is the last key of the previous page, and the nil GUID on page 1 (it sorts before
every GUID, so the query's ``key > @after`` holds for every row without relying on how Slate passes an omitted
parameter); a page with fewer than ``limit`` rows is the last. The client retries transient failures (429 honouring ``Retry-After``, 500/502/503/504, timeouts,
dropped connections, a truncated body) with capped exponential backoff and jitter, fails at once on 400/401/403/404,
and checks each answer (content type, JSON, shape, required columns, cursor order). It never returns partial data.
"""

from __future__ import annotations

import itertools
import json
import logging
import random
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import pandas as pd
import requests
from requests.adapters import HTTPAdapter

from leadscore.slate.connections import SlateApiConfig
from leadscore.slate.errors import (
    SlateAuthError,
    SlateError,
    SlateNotFoundError,
    SlateResponseError,
    SlateSchemaError,
    SlateTransientError,
)
from leadscore.slate.keyorder import KEY_ORDERS, NIL_GUID, order_key_function
from leadscore.slate.queries import MAX_PAGE_ROWS, QUERIES, QuerySpec
from leadscore.slate.wall_time import UTC_NAME, wall_time

log = logging.getLogger(__name__)

RUN_PATH = "/manage/query/run"
WIRE_DATETIME = "%Y-%m-%dT%H:%M:%S"
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
# A required column absent from every row of a page this large is a changed query, not a few dirty rows (those are
# quarantined by validation). Smaller pages are judged on the whole result instead, so a short last page holding one
# dirty row does not fail the run.
MIN_ROWS_FOR_PAGE_COLUMN_CHECK = 20
_SNIPPET_CHARS = 160


@dataclass(frozen=True)
class Page:
    """One validated page of a query's answer.

    Attributes:
        query: query name. number: 1-based page number. rows: the rows as sent (dicts of strings, NULLs omitted).
        columns: columns seen on this page, in first-seen order. after: the cursor sent (``NIL_GUID`` on page 1).
        last_key: key of the last row (the next page's cursor), None when the page is empty.
        retries: retries this page needed. seconds: wall time of this page including retries.
    """

    query: str
    number: int
    rows: list[dict[str, str]] = field(repr=False)
    columns: tuple[str, ...]
    after: str
    last_key: str | None
    retries: int
    seconds: float


@dataclass(frozen=True)
class FetchResult:
    """The whole answer of a query over a window.

    Attributes:
        query: query name.
        frame: one row per answered row; every column seen (the query's columns first, then unexpected extras) as
            strings, NaN where the row omitted the column (NULL).
        pages, rows, retries: counts over the fetch. seconds: wall time of the fetch.
    """

    query: str
    frame: pd.DataFrame = field(repr=False)
    pages: int
    rows: int
    retries: int
    seconds: float


def format_wire_datetime(value: datetime | pd.Timestamp | str | None, timezone: str = UTC_NAME) -> str | None:
    """Format a window bound as Slate's ``datetime`` parameter ``YYYY-MM-DDTHH:MM:SS`` in the instance's wall time.

    Args:
        value: a naive datetime (taken as UTC), an aware one, a string parseable by pandas, or None.
        timezone: the instance's IANA zone (``Settings.slate_timezone``); the bound is sent as its wall time, which
            is what Slate compares its naive stamps against.
    Returns:
        The formatted string, or None for None.
    Raises:
        TimeZoneError: unknown zone name.
    """
    if value is None:
        return None
    return wall_time(value, timezone).strftime(WIRE_DATETIME)


def _retry_after_seconds(header: str | None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or HTTP date); None when absent or unparseable."""
    if not header:
        return None
    header = header.strip()
    try:
        return max(0.0, float(header))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(header)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


class _RedactSecrets(logging.Filter):
    """Replaces known secrets in log records by ``***``.

    urllib3 logs every request line at DEBUG, and Slate's ``h`` hash travels in the query string, so a task run with
    DEBUG logging would write the hash into the task log (found by tests/reliability, issue 8).
    """

    def __init__(self) -> None:
        super().__init__()
        self.secrets: set[str] = set()

    def filter(self, record: logging.LogRecord) -> bool:
        if self.secrets:
            message = record.getMessage()
            if any(s in message for s in self.secrets):
                for secret in self.secrets:
                    message = message.replace(secret, "***")
                record.msg, record.args = message, ()
        return True


_URLLIB3_REDACTOR = _RedactSecrets()
logging.getLogger("urllib3.connectionpool").addFilter(_URLLIB3_REDACTOR)


class _BadBody(Exception):
    """A 200 answer whose body is not complete JSON (e.g. truncated): retried like a transient failure."""


class SlateClient:
    """Reads Slate queries exposed as web services, page by page, over one pooled HTTP session.

    Args:
        config: base URL, credentials, query GUIDs and hashes, timeouts and retry policy.
        sleep: the function used to wait between retries (injectable so tests need not wait).
        rng: random source of the backoff jitter.
        session: an existing ``requests.Session`` (default: a new one with a connection pool).
    """

    def __init__(
        self,
        config: SlateApiConfig,
        *,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
        session: requests.Session | None = None,
    ) -> None:
        self.config = config
        self._sleep = sleep
        self._rng = rng or random.Random()
        if session is None:
            session = requests.Session()
            # Retries are ours (they must see status codes and bodies), so the adapter itself never retries.
            adapter = HTTPAdapter(pool_connections=4, pool_maxsize=4, max_retries=0)
            session.mount("https://", adapter)
            session.mount("http://", adapter)
        session.headers.update({"Accept": "application/json", "User-Agent": "leadscore-slate-client"})
        self._session = session
        self._order_key = order_key_function(config.key_order)
        self._secrets = [config.password, *(q.h for q in config.queries.values())]
        _URLLIB3_REDACTOR.secrets.update(secret for secret in self._secrets if secret)

    def close(self) -> None:
        """Close the pooled session."""
        self._session.close()

    def __enter__(self) -> SlateClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"SlateClient({self.config!r})"

    # -- public API ------------------------------------------------------------------------------------------------

    def fetch_pages(
        self,
        query: QuerySpec | str,
        since: datetime | pd.Timestamp | str | None,
        until: datetime | pd.Timestamp | str | None,
        page_size: int = MAX_PAGE_ROWS,
        timezone: str = UTC_NAME,
    ) -> Iterator[Page]:
        """Yield the validated pages of ``query`` over ``[since, until)`` until the last page.

        Args:
            query: the QuerySpec (or its name) to run.
            since: inclusive lower bound of the window (naive = UTC); None asks for the whole history.
            until: exclusive upper bound (naive = UTC); None leaves it to the query.
            page_size: rows per page (``limit``), 1..MAX_PAGE_ROWS.
            timezone: the instance's IANA zone: since/until are sent as its wall time.
        Yields:
            Page objects in key order.
        Raises:
            ValueError: page_size out of range.
            SlateAuthError (401/403), SlateNotFoundError (404), SlateTransientError (retries exhausted),
            SlateResponseError (HTML, invalid JSON, wrong shape, broken cursor, 400 or another status),
            SlateSchemaError (a required column is missing). Pages already yielded stay valid but the sequence is
            incomplete; use fetch_all to get all or nothing.
        """
        spec = QUERIES[query] if isinstance(query, str) else query
        if not 1 <= int(page_size) <= MAX_PAGE_ROWS:
            raise ValueError(f"page_size must be in 1..{MAX_PAGE_ROWS}, got {page_size}")
        auth = self.config.query_auth(spec.name)
        base_params: dict[str, Any] = {"id": auth.id, "cmd": "service", "output": "json", "h": auth.h}
        for name, value in (("since", since), ("until", until)):
            formatted = format_wire_datetime(value, timezone)
            if formatted is not None:
                base_params[name] = formatted
        base_params["limit"] = int(page_size)

        after = NIL_GUID
        number = 0
        seen_required: set[str] = set()
        total_rows = 0
        while True:
            number += 1
            params = {**base_params, "after": after}
            started = time.monotonic()
            payload, retries = self._get_json(spec, number, params)
            rows, columns = self._check_rows(spec, number, payload)
            self._check_required(spec, number, rows, columns)
            last_key = self._check_cursor(spec, number, rows, after)
            self._check_limit(spec, number, rows, page_size)
            seen_required.update(c for c in spec.required_columns if c in columns)
            total_rows += len(rows)
            page = Page(spec.name, number, rows, columns, after, last_key, retries, time.monotonic() - started)
            log.debug("slate %s page %d: %d rows, %d retries", spec.name, number, len(rows), retries)
            is_last = len(rows) < page_size
            if is_last and total_rows:
                never = [c for c in spec.required_columns if c not in seen_required]
                if never:
                    raise SlateSchemaError(
                        f"required column(s) {never} absent from every row of pages 1-{number}; "
                        "the Slate query no longer exports them (check its columns)",
                        query=spec.name,
                        page=number,
                    )
            yield page
            if is_last:
                return
            after = last_key

    def fetch_all(
        self,
        query: QuerySpec | str,
        since: datetime | pd.Timestamp | str | None,
        until: datetime | pd.Timestamp | str | None,
        page_size: int = MAX_PAGE_ROWS,
        timezone: str = UTC_NAME,
    ) -> FetchResult:
        """Fetch every page of ``query`` over ``[since, until)`` into one frame of strings; all or nothing.

        Args: as :meth:`fetch_pages`.
        Returns:
            FetchResult with the frame (the query's columns first, then unexpected extra columns; NaN = omitted).
        Raises:
            Any SlateError of :meth:`fetch_pages`; no partial result is ever returned.
        """
        spec = QUERIES[query] if isinstance(query, str) else query
        started = time.monotonic()
        frames: list[pd.DataFrame] = []
        extras: list[str] = []
        pages = rows = retries = 0
        for page in self.fetch_pages(spec, since, until, page_size, timezone):
            pages += 1
            rows += len(page.rows)
            retries += page.retries
            for col in page.columns:
                if col not in spec.column_names and col not in extras:
                    extras.append(col)
            if page.rows:
                # Columnar per page so the Python dicts of one page are freed before the next arrives.
                frames.append(
                    pd.DataFrame(
                        {c: pd.Series([r.get(c) for r in page.rows], dtype="str") for c in page.columns},
                    )
                )
        columns = [*spec.column_names, *extras]
        if frames:
            frame = pd.concat(frames, ignore_index=True).reindex(columns=columns)
            frame = frame.astype("str")
        else:
            frame = pd.DataFrame({c: pd.Series([], dtype="str") for c in columns})
        seconds = time.monotonic() - started
        log.info("slate %s: %d rows in %d pages, %d retries, %.1f s", spec.name, rows, pages, retries, seconds)
        return FetchResult(spec.name, frame, pages, rows, retries, seconds)

    # -- one page ----------------------------------------------------------------------------------------------

    def _redact(self, text: str) -> str:
        for secret in self._secrets:
            if secret:
                text = text.replace(secret, "***")
        return text

    def _snippet(self, body: bytes) -> str:
        text = body[:4000].decode("utf-8", errors="replace")
        text = re.sub(r"<(script|style)\b.*?</\1\s*>", " ", text, flags=re.IGNORECASE | re.DOTALL)
        text = re.sub(r"<[^>]+>", " ", text)
        text = re.sub(r"\s+", " ", text).strip()
        return self._redact(text[:_SNIPPET_CHARS])

    def _delay(self, retry: int, retry_after: float | None) -> float:
        cap = self.config.max_backoff
        if retry_after is not None:
            return min(retry_after, cap)
        base = min(cap, self.config.backoff * (2 ** (retry - 1)))
        # "Equal jitter": at least half the backoff, so a crowd of clients spreads out without retrying instantly.
        return base / 2 + self._rng.uniform(0, base / 2)

    def _get_json(self, spec: QuerySpec, number: int, params: dict[str, Any]) -> tuple[Any, int]:
        """GET one page with retries; returns (decoded JSON, retries used)."""
        url = self.config.base_url + RUN_PATH
        timeout = (self.config.connect_timeout, self.config.read_timeout)
        auth = (self.config.username, self.config.password)
        retries = 0
        while True:
            retry_after: float | None = None
            bad_body = False
            try:
                response = self._session.get(url, params=params, auth=auth, timeout=timeout)
            except requests.Timeout as exc:
                cause = f"timed out ({type(exc).__name__}; connect {timeout[0]} s, read {timeout[1]} s)"
            except (requests.ConnectionError, requests.exceptions.ChunkedEncodingError) as exc:
                # The message of a requests error carries the URL with `h`: redact, never chain it.
                cause = f"connection failed ({type(exc).__name__}: {self._redact(str(exc))[:200]})"
            except requests.RequestException as exc:
                raise SlateError(
                    f"request failed: {type(exc).__name__}: {self._redact(str(exc))[:200]}",
                    query=spec.name,
                    page=number,
                ) from None
            else:
                status = response.status_code
                if status == 200:
                    try:
                        return self._decode(spec, number, response), retries
                    except _BadBody as exc:
                        cause, bad_body = str(exc), True
                elif status in RETRY_STATUSES:
                    cause = f"HTTP {status} {response.reason or ''}".strip()
                    if status == 429:
                        retry_after = _retry_after_seconds(response.headers.get("Retry-After"))
                        if retry_after is not None:
                            cause += f" (Retry-After {retry_after:g} s)"
                else:
                    self._raise_for_status(spec, number, response)
            if retries >= self.config.max_retries:
                attempts = retries + 1
                if bad_body:
                    raise SlateResponseError(
                        f"invalid JSON body on each of {attempts} attempts; last: {cause}", query=spec.name, page=number
                    )
                raise SlateTransientError(
                    f"gave up after {attempts} attempts; last failure: {cause}. Slate may be down or rate-limiting; "
                    "re-run the task later or raise max_retries/read_timeout in the slate_api extras",
                    query=spec.name,
                    page=number,
                )
            retries += 1
            delay = self._delay(retries, retry_after)
            log.warning(
                "slate %s page %d: %s; retry %d/%d in %.1f s",
                spec.name,
                number,
                cause,
                retries,
                self.config.max_retries,
                delay,
            )
            self._sleep(delay)

    def _raise_for_status(self, spec: QuerySpec, number: int, response: requests.Response) -> None:
        status = response.status_code
        snippet = self._snippet(response.content)
        detail = f" (server said: {snippet})" if snippet else ""
        if status == 401:
            raise SlateAuthError(
                "authentication failed: check the login and password of the slate_api connection (the Service "
                f"Account of the query's Username grantee){detail}",
                query=spec.name,
                page=number,
                status=status,
            )
        if status == 403:
            raise SlateAuthError(
                "forbidden: check the query's 'h' hash in the slate_api extras and that the Service Account is a "
                f"grantee of the query{detail}",
                query=spec.name,
                page=number,
                status=status,
            )
        if status == 404:
            raise SlateNotFoundError(
                f"not found: check the query GUID (slate_api extras queries.{spec.name}.id) and that the query is "
                f"exposed as a web service on this instance{detail}",
                query=spec.name,
                page=number,
                status=status,
            )
        if status == 400:
            raise SlateResponseError(
                f"bad request: the query rejected its parameters (since/until/after/limit){detail}",
                query=spec.name,
                page=number,
                status=status,
            )
        raise SlateResponseError(f"unexpected HTTP status{detail}", query=spec.name, page=number, status=status)

    def _decode(self, spec: QuerySpec, number: int, response: requests.Response) -> Any:
        body = response.content
        mime = response.headers.get("Content-Type", "").split(";")[0].strip().lower()
        is_json = mime in ("application/json", "text/json") or mime.endswith("+json")
        if not is_json:
            if "html" in mime or body.lstrip()[:1] == b"<":
                raise SlateResponseError(
                    f"answered an HTML page with status 200 instead of JSON (a Slate error or login page?): "
                    f"{self._snippet(body)!r}",
                    query=spec.name,
                    page=number,
                    status=200,
                )
            raise SlateResponseError(
                f"Content-Type {mime or '(none)'!r} is not JSON", query=spec.name, page=number, status=200
            )
        try:
            # Numbers keep their exact wire text: "1.50" stays "1.50" (not 1.5), a 20-digit number is not rounded.
            return json.loads(body, parse_int=str, parse_float=str, parse_constant=str)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            reason = exc.msg if isinstance(exc, json.JSONDecodeError) else "not UTF-8"
            raise _BadBody(
                f"invalid JSON ({reason} at byte {getattr(exc, 'pos', '?')} of {len(body)}; truncated?)"
            ) from None

    # -- checks of one page ---------------------------------------------------------------------------------------

    def _check_rows(self, spec: QuerySpec, number: int, payload: Any) -> tuple[list[dict[str, str]], tuple[str, ...]]:
        if not isinstance(payload, dict) or "row" not in payload:
            shape = (
                type(payload).__name__ if not isinstance(payload, dict) else f"object with keys {sorted(payload)[:5]}"
            )
            raise SlateResponseError(
                f"answer is a JSON {shape}, expected an object with a 'row' list", query=spec.name, page=number
            )
        rows = payload["row"]
        if not isinstance(rows, list):
            raise SlateResponseError(
                f"'row' is a JSON {type(rows).__name__}, expected a list", query=spec.name, page=number
            )
        # Whole-page checks first (C-speed set/dict builds); the row-by-row path runs only to name a bad row.
        if any(type(row) is not dict for row in rows):
            i, row = next((i, r) for i, r in enumerate(rows) if not isinstance(r, dict))
            raise SlateResponseError(
                f"row {i} is a JSON {type(row).__name__}, expected an object", query=spec.name, page=number
            )
        value_types = {type(v) for row in rows for v in row.values()}
        if value_types - {str}:
            # Numbers already arrive as their wire text (see _decode); booleans, nulls and nested values remain.
            rows = [self._string_row(spec, number, i, row) for i, row in enumerate(rows)]
        columns = tuple(dict.fromkeys(itertools.chain.from_iterable(rows)))
        return rows, columns

    def _string_row(self, spec: QuerySpec, number: int, i: int, row: dict[str, Any]) -> dict[str, str]:
        """One row with every value a string: booleans as "true"/"false", nulls omitted (NULL)."""
        out: dict[str, str] = {}
        for k, v in row.items():
            if v is None:
                continue
            if isinstance(v, str):
                out[k] = v
            elif isinstance(v, bool):
                out[k] = "true" if v else "false"
            elif k in spec.column_names:
                raise SlateResponseError(
                    f"row {i} column {k!r} holds a JSON {type(v).__name__} ({self._redact(json.dumps(v))[:80]}); "
                    f"the query must export {k!r} as a plain value, not a subquery formatted as JSON or XML "
                    "(check the column's export in the Slate query)",
                    query=spec.name,
                    page=number,
                )
            else:  # an unexpected extra column: dropped by validation, which counts its non-NULL values
                out[k] = json.dumps(v, ensure_ascii=False)
        return out

    def _check_required(
        self, spec: QuerySpec, number: int, rows: list[dict[str, str]], columns: tuple[str, ...]
    ) -> None:
        if len(rows) < MIN_ROWS_FOR_PAGE_COLUMN_CHECK:
            return
        missing = [c for c in spec.required_columns if c not in columns]
        if missing:
            raise SlateSchemaError(
                f"required column(s) {missing} absent from all {len(rows)} rows of the page (columns seen: "
                f"{list(columns)}); the Slate query no longer exports them (check its columns)",
                query=spec.name,
                page=number,
            )

    def _check_limit(self, spec: QuerySpec, number: int, rows: list[dict[str, str]], page_size: int) -> None:
        # A page may exceed `limit` only by rows tying with its last key (duplicate records served together, as
        # `TOP ... WITH TIES`), so that a cursor never splits them.
        if len(rows) <= page_size:
            return
        last = self._order_key(rows[-1][spec.key])
        if any(self._order_key(r[spec.key]) != last for r in rows[page_size - 1 :]):
            raise SlateResponseError(
                f"answered {len(rows)} rows although limit={page_size}; the query ignores its 'limit' parameter",
                query=spec.name,
                page=number,
            )

    def _check_cursor(self, spec: QuerySpec, number: int, rows: list[dict[str, str]], after: str) -> str | None:
        if not rows:
            return None
        keys: list[str] = []
        for i, row in enumerate(rows):
            key = row.get(spec.key)
            if key is None or not key.strip():
                raise SlateSchemaError(
                    f"row {i} lacks the key column {spec.key!r}, so the pages cannot be followed",
                    query=spec.name,
                    page=number,
                )
            keys.append(key)
        order = [self._order_key(k) for k in keys]
        if order[0] <= self._order_key(after):
            raise SlateResponseError(
                f"cursor went backwards or repeated: first key {keys[0]!r} is not after the cursor {after!r}; the "
                "query must return rows with key > @after ordered by key",
                query=spec.name,
                page=number,
            )
        # Equal neighbours are duplicate rows (cleaning drops and counts them); only a step back breaks paging.
        for i in range(1, len(order)):
            if order[i] < order[i - 1]:
                raise SlateResponseError(
                    f"keys out of order at row {i}: {keys[i - 1]!r} then {keys[i]!r}; the query must "
                    f"order by {spec.key} (key_order={self.config.key_order!r}){self._order_hint(keys)}",
                    query=spec.name,
                    page=number,
                )
        return keys[-1]

    def _order_hint(self, keys: list[str]) -> str:
        """Names the other key order when the page follows it: the connection's knob is then the fix."""
        other = next(o for o in KEY_ORDERS if o != self.config.key_order)
        other_key = order_key_function(other)
        order = [other_key(k) for k in keys]
        if all(a <= b for a, b in itertools.pairwise(order)):
            return f'; this page is in {other} order: set "key_order": "{other}" in the slate_api extras'
        return ""
