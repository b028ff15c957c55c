"""Reconciliation of the stored persons with Slate: which stored GUIDs were merged away or deleted.

Slate merges a duplicate record into its survivor by deleting the duplicate (its messages, pings and activities move
to the survivor); a purge deletes records outright. Neither leaves a row that the ``leads`` query could return, so
each ``lead_data`` run also pulls the ``persons`` query (the GUIDs that exist now, test-tagged records excluded) and
stores, as the interval's ``persons`` extract, the stored lead GUIDs that list no longer holds (tombstones). From the
interval's end on, the store leaves those persons out: they are never trained on or scored again. Their history is
dropped, not moved to the survivor: Slate's web service does not say which record survived, and the survivor's own
record already carries its origin and the interactions Slate moved to it from the next pulls on.
"""

from __future__ import annotations

import logging

import pandas as pd

from leadscore.data.validate import ValidationResult, validate
from leadscore.settings import Settings
from leadscore.slate.client import SlateClient
from leadscore.slate.pages import FetchResult
from leadscore.slate.queries import PERSONS

log = logging.getLogger(__name__)

# A reconciliation that would declare more than this share of the stored persons dead is refused: a wrong query (a
# filter too many, the wrong saved query) looks exactly like a mass deletion, and a tombstone cannot be undone.
MAX_DEAD_SHARE = 0.5


class ReconciliationError(RuntimeError):
    """The persons query's answer cannot be right (empty, or it would remove most stored persons)."""


def fetch_persons(client: SlateClient, settings: Settings, until: pd.Timestamp) -> tuple[FetchResult, ValidationResult]:
    """Pull and validate the ``persons`` query: every person that exists in Slate now, created before ``until``.

    Raises:
        SlateError: the query failed (nothing is stored for the interval then).
    """
    zone = settings.slate_timezone  # until is sent as the instance's wall time, as for the other queries
    fetched = client.fetch_all(PERSONS, None, until, settings.page_size, zone)
    result = validate(PERSONS, fetched.frame, not_after=until, timezone=zone)
    log.info(
        "persons: %d rows fetched, %d quarantined %s", fetched.rows, len(result.quarantined), result.counts_by_reason
    )
    return fetched, result


def find_gone(result: ValidationResult, stored: pd.Series) -> pd.DataFrame:
    """The GUIDs among ``stored`` that the validated persons answer no longer lists (the tombstones).

    Args:
        result: the validated persons answer. stored: the person GUIDs the store holds (this interval's too).
    Returns:
        One row per gone GUID (column person_guid), sorted.
    Raises:
        ReconciliationError: the list is empty while persons are stored, or more than MAX_DEAD_SHARE of them would
        be removed (a wrong query looks like a mass deletion; nothing is written).
    """
    live = pd.Index(result.valid["person_guid"].dropna().astype(str).unique())
    known = pd.Index(stored.dropna().astype(str).unique())
    gone = known.difference(live)
    if len(known) and not len(live):
        raise ReconciliationError(
            f"the persons query returned no person while the store holds {len(known)}; nothing was written. Check "
            "that the slate_api connection's 'persons' entry names the query of include/leadscore/slate/sql/persons.sql"
        )
    if len(known) and len(gone) / len(known) > MAX_DEAD_SHARE:
        raise ReconciliationError(
            f"the persons query lists {len(live)} persons and would remove {len(gone)} of the {len(known)} stored "
            f"(more than {MAX_DEAD_SHARE:.0%}); nothing was written. Check its filters against "
            "include/leadscore/slate/sql/persons.sql"
        )
    log.info("persons: %d listed by Slate, %d of %d stored persons are gone", len(live), len(gone), len(known))
    return pd.DataFrame({"person_guid": pd.Series(sorted(gone), dtype="string")})
