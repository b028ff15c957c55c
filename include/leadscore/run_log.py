"""Small JSON summaries each step leaves under ``LEADSCORE_HOME/runs/`` so the demo and people can read results."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from leadscore.files import atomic_write_bytes
from leadscore.settings import Settings


def jsonable(obj: Any) -> dict[str, Any]:
    """A dataclass or dict as plain JSON types (dates and paths become strings), ready for XCom and summaries."""
    import dataclasses

    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        obj = dataclasses.asdict(obj)
    return json.loads(json.dumps(obj, default=str))


def summary_path(settings: Settings, step: str, key: str) -> Path:
    """Where the summary of ``step`` (extract, training, scoring, delivery, monitoring) for ``key`` lives."""
    return settings.home_abs / "runs" / step / f"{key}.json"


def write_summary(settings: Settings, step: str, key: str, summary: dict[str, Any]) -> Path:
    """Write (replace) a step's summary atomically; returns its path."""
    path = summary_path(settings, step, key)
    atomic_write_bytes(path, json.dumps(summary, indent=2, sort_keys=True, default=str).encode())
    return path


def read_summary(settings: Settings, step: str, key: str) -> dict[str, Any] | None:
    """A step's summary, or None when the step has not run for ``key``."""
    path = summary_path(settings, step, key)
    return json.loads(path.read_text()) if path.exists() else None


def latest_summary(settings: Settings, step: str) -> dict[str, Any] | None:
    """The most recent (by key order) summary of a step, or None."""
    folder = settings.home_abs / "runs" / step
    files = sorted(folder.glob("*.json")) if folder.exists() else []
    return json.loads(files[-1].read_text()) if files else None
