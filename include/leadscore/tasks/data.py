"""The `lead_data` steps: extract one interval from Slate, store it, report its quality."""

from __future__ import annotations

import json
import logging
from typing import Any

from leadscore.intervals import Interval
from leadscore.run_log import jsonable, write_summary
from leadscore.settings import Settings

log = logging.getLogger(__name__)


def extract_week(settings: Settings, interval: Interval, api_config: Any, full_history: bool = False) -> dict:
    """Fetch, validate, clean and store both queries for ``interval``; all or nothing.

    Args:
        settings: LeadScore settings (extract and quarantine folders, page size, quarantine bound).
        interval: the week to pull; the first run (no earlier extract) or ``full_history`` pulls everything before its end.
        api_config: the web-service client configuration (from the ``slate_api`` connection).
    Returns:
        The interval's data-quality summary as a JSON-able dict.
    Raises:
        SourceMismatchError: the store's extracts came from another Slate (nothing is fetched or written).
        SlateError subclasses for web-service faults, QuarantineLimitError when too many rows are bad.
    """
    from leadscore.data.extract import extract_interval
    from leadscore.data.store import ExtractStore
    from leadscore.slate.client import SlateClient

    store = ExtractStore(settings.extracts_dir)
    store.bind_source(api_config.source())  # before any request: never mix two sources in one store
    with SlateClient(api_config) as client:
        summary = extract_interval(
            client, store, settings, interval.start, interval.end, full_history=True if full_history else None
        )
    out = jsonable(summary.as_dict())
    write_summary(settings, "extract", interval.key, out)
    return out


def log_quality(summary: dict) -> dict:
    """Log the data-quality summary of an interval in one readable block and return it unchanged."""
    log.info("data quality summary:\n%s", json.dumps(summary, indent=2, default=str))
    return summary
