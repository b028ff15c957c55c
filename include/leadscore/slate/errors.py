"""Errors of the Slate query web-service client.

Every message names the query, the page number (1-based) and the cause, and never contains the password or the
``h`` hash of a query. Catch :class:`SlateError` for "anything went wrong talking to Slate".
"""

from __future__ import annotations


class SlateError(Exception):
    """Base class of every Slate client error.

    Attributes:
        query: name of the query (``leads``, ``interactions``) or ``None`` when not tied to one.
        page: 1-based page number or ``None`` when not tied to a page.
        status: HTTP status of the answer, when there was one.
    """

    def __init__(self, message: str, *, query: str | None = None, page: int | None = None, status: int | None = None):
        where = []
        if query is not None:
            where.append(f"query {query!r}")
        if page is not None:
            where.append(f"page {page}")
        if status is not None:
            where.append(f"HTTP {status}")
        prefix = f"Slate {', '.join(where)}: " if where else "Slate: "
        super().__init__(prefix + message)
        self.query = query
        self.page = page
        self.status = status


class SlateConfigError(SlateError, ValueError):
    """The ``slate_api`` connection lacks a field or holds an invalid value (the message names the field)."""


class SlateAuthError(SlateError):
    """401 or 403: wrong Service Account credentials, a wrong ``h`` hash, or a user without permission."""


class SlateNotFoundError(SlateError):
    """404: the query GUID does not exist on this instance or is not exposed as a web service."""


class SlateTransientError(SlateError):
    """A transient failure (429, 5xx, timeout, dropped connection) persisted after every allowed retry."""


class SlateResponseError(SlateError):
    """An answer that is not a valid query result: HTML instead of JSON, invalid JSON, wrong shape, broken cursor."""


class SlateSchemaError(SlateResponseError):
    """A valid answer whose columns break the query's contract (e.g. a required column is missing)."""
