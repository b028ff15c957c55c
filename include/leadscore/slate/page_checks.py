"""Checks of one answered page of Slate's query web service (a mixin of ``slate.client.SlateClient``).

Each check raises a ``SlateResponseError`` or ``SlateSchemaError`` naming the query, the page, the row and what to
change in the Slate query or the connection; ``_BadBody`` marks a 200 answer whose body is not complete JSON, which
the client retries like a transient failure.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable
from typing import Any

import requests

from leadscore.slate.connections import SlateApiConfig
from leadscore.slate.errors import SlateResponseError, SlateSchemaError
from leadscore.slate.keyorder import KEY_ORDERS, order_key_function
from leadscore.slate.queries import QuerySpec

# A required column absent from every row of a page this large is a changed query, not a few dirty rows (those are
# quarantined by validation). Smaller pages are judged on the whole result instead, so a short last page holding one
# dirty row does not fail the run.
MIN_ROWS_FOR_PAGE_COLUMN_CHECK = 20


class _BadBody(Exception):
    """A 200 answer whose body is not complete JSON (e.g. truncated): retried like a transient failure."""


class PageChecks:
    """Decoding and checks of one page; the client provides ``config``, ``_order_key``, ``_redact``, ``_snippet``."""

    config: SlateApiConfig
    _order_key: Callable[[str], Any]

    def _redact(self, text: str) -> str:  # pragma: no cover - provided by SlateClient
        raise NotImplementedError

    def _snippet(self, body: bytes) -> str:  # pragma: no cover - provided by SlateClient
        raise NotImplementedError

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
