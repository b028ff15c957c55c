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

import logging
import random
import re
import time
from collections.abc import Callable, Iterator
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
from leadscore.slate.keyorder import NIL_GUID, order_key_function
from leadscore.slate.page_checks import PageChecks, _BadBody
from leadscore.slate.pages import FetchResult, Page, format_wire_datetime
from leadscore.slate.queries import MAX_PAGE_ROWS, QUERIES, QuerySpec
from leadscore.slate.wall_time import UTC_NAME

log = logging.getLogger(__name__)

RUN_PATH = "/manage/query/run"
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
_SNIPPET_CHARS = 160


class _PageDeadline(Exception):
    """One attempt at a page passed ``page_timeout`` (retried like a timeout)."""


def _map_read_error(exc: Exception) -> Exception:
    """A urllib3 error while reading a body, as the requests exception ``response.content`` would raise."""
    from urllib3.exceptions import DecodeError, ProtocolError, ReadTimeoutError, SSLError

    if isinstance(exc, ReadTimeoutError):
        return requests.exceptions.ReadTimeout(exc)
    if isinstance(exc, DecodeError):
        return requests.exceptions.ContentDecodingError(exc)
    if isinstance(exc, ProtocolError):
        return requests.exceptions.ChunkedEncodingError(exc)
    if isinstance(exc, SSLError):
        return requests.exceptions.SSLError(exc)
    return exc


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


class SlateClient(PageChecks):
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
                response = self._get_within_deadline(url, params, auth, timeout)
            except _PageDeadline as exc:
                cause = f"timed out ({exc})"
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
                    "re-run the task later or raise max_retries/read_timeout/page_timeout in the slate_api extras",
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

    def _get_within_deadline(
        self, url: str, params: dict[str, Any], auth: tuple[str, str], timeout: tuple[float, float]
    ) -> requests.Response:
        """One GET whose headers and whole body arrive within ``config.page_timeout`` seconds, else _PageDeadline.

        ``requests``' read timeout bounds each socket read only; the body is read here in pieces as they come
        (``read1``), checking the total deadline between pieces, so a drip-feed or a stalled body ends on time.
        """
        limit = self.config.page_timeout
        deadline = time.monotonic() + limit
        with self._session.get(url, params=params, auth=auth, timeout=timeout, stream=True) as response:
            pieces: list[bytes] = []
            received = 0
            while True:
                if time.monotonic() > deadline:
                    raise _PageDeadline(
                        f"no complete answer within page_timeout {limit:g} s; {received} body bytes received"
                    )
                try:
                    piece = response.raw.read1(1 << 16, decode_content=True)
                except Exception as exc:  # urllib3's read errors, as requests maps them in iter_content
                    raise _map_read_error(exc) from None
                if not piece:
                    break
                pieces.append(piece)
                received += len(piece)
            response._content = b"".join(pieces)  # what .content would have read, for the checks below
            response._content_consumed = True
        return response

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
