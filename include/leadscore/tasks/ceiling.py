"""The one seam through which the sandbox's ground truth (the ceiling ``true_p``) enters LeadScore.

``data/`` and ``model/`` never import ``sandbox/``. The training task asks this module for the truth; it gives it only
when the extract store's recorded source (``source.json``) is the sandbox found under ``settings.sandbox_dir``: the
same query GUIDs as the sandbox's credentials. Extracts of a real Slate never get a ceiling, even when a sandbox was
generated in the same ``LEADSCORE_HOME`` before.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import pandas as pd

from leadscore.settings import Settings

log = logging.getLogger(__name__)

_DATA_QUERIES = ("leads", "interactions")


def store_is_sandbox(settings: Settings, source: dict[str, Any] | None) -> bool:
    """Whether the recorded store source is the sandbox under ``settings.sandbox_dir`` (same query GUIDs)."""
    if not source:
        return False
    from leadscore.sandbox.config import SandboxCredentials, SandboxPaths

    paths = SandboxPaths(settings.sandbox_dir)
    if not paths.credentials.is_file():
        return False
    try:
        creds = SandboxCredentials.from_json(paths.credentials.read_text())
    except (ValueError, KeyError, TypeError):
        return False
    recorded = source.get("queries", {})
    return all(name in creds.queries and recorded.get(name) == creds.queries[name].id.lower() for name in _DATA_QUERIES)


def sandbox_truth(settings: Settings, source: dict[str, Any] | None) -> pd.DataFrame | None:
    """The sandbox generator's truth table when the store came from that sandbox, else None (logged)."""
    from leadscore.sandbox.config import SandboxPaths

    truth = SandboxPaths(settings.sandbox_dir).truth
    if not truth.is_file():
        return None
    if not store_is_sandbox(settings, source):
        log.info("no ceiling: the extracts did not come from the sandbox in %s", settings.sandbox_dir)
        return None
    return pd.read_parquet(truth)


def attach_truth(rows: pd.DataFrame, truth: object, horizon_days: int) -> pd.DataFrame:
    """Add ``true_p``: the sandbox generator's true probability of applying within H days of each row's ``as_of``.

    Args:
        rows: landmark rows with ``person_guid`` and ``as_of``. truth: the sandbox's truth table.
        horizon_days: H.
    Returns:
        A copy of ``rows`` with a float64 column ``true_p``.
    Raises:
        ValueError: ``true_probability`` returns a different number of values than rows.
    """
    from leadscore.sandbox.generator import true_probability

    p = np.asarray(true_probability(truth, rows["person_guid"], rows["as_of"], horizon_days), dtype=np.float64)
    if p.shape != (len(rows),):
        raise ValueError(f"true_probability returned shape {p.shape} for {len(rows)} rows")
    return rows.assign(true_p=p)
