"""Cleaning of validated query rows into the tables of ``data.tables``: normalized labels, no test records, no
duplicates, the latest version of each lead, and no personal fields (FERPA: no names, no e-mail addresses).
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field

import pandas as pd

from leadscore.data.tables import INTERACTION_COLUMNS, LEAD_COLUMNS
from leadscore.slate.queries import INTERACTIONS, LEADS

# Canonical origin-source labels. A label is matched on its letters and digits only, case-insensitively, so that
# "Ad-Hoc Data Load", "Ad Hoc Data Load" and "adhoc data load" are one label.
SOURCE_LABELS: tuple[str, ...] = (
    "Source",
    "Ad-Hoc Data Load",
    "Vendor Lead",
    "Event Registration",
    "Campus Visit",
    "Inquiry Form",
)
_SOURCE_BY_KEY: dict[str, str] = {re.sub(r"[^0-9a-z]", "", label.lower()): label for label in SOURCE_LABELS}
INQUIRY_LABEL = "Inquiry Form"
_TEST_TAG = r"(?:^|[,;])\s*test\s*(?:$|[,;])"
_LEAD_SORT = ["person_guid", "updated", "application_created", "origin_date"]


def _canonical_source(label: str) -> str:
    collapsed = " ".join(label.split())
    key = re.sub(r"[^0-9a-z]", "", collapsed.lower())
    if key in _SOURCE_BY_KEY:
        return _SOURCE_BY_KEY[key]
    if key.endswith("inquiry"):  # per-college forms: "Biology Inquiry", "College of Arts Inquiry"
        return INQUIRY_LABEL
    return collapsed.title()


def normalize_source(labels: pd.Series) -> pd.Series:
    """Normalize origin-source labels to the canonical ones of SOURCE_LABELS.

    Trims, collapses inner whitespace and matches case- and punctuation-insensitively; any "... Inquiry" becomes
    "Inquiry Form"; an unknown label is kept, title-cased (see :func:`unseen_sources` to count those).

    Args:
        labels: source labels (NA stays NA).
    Returns:
        A ``string`` series of normalized labels, same index.
    """
    text = labels.astype("string")
    uniques = text.dropna().unique()
    # Few distinct labels: map each once rather than per row.
    mapping = {u: _canonical_source(u) for u in uniques}
    return text.map(mapping, na_action="ignore").astype("string")


def unseen_sources(normalized: pd.Series) -> dict[str, int]:
    """Normalized labels that are not canonical, with their row counts (for the data-quality summary)."""
    unknown = normalized[normalized.notna() & ~normalized.isin(SOURCE_LABELS)]
    return {str(k): int(v) for k, v in unknown.value_counts().sort_index().items()}


def is_test_tagged(tags: pd.Series) -> pd.Series:
    """True where the comma- or semicolon-separated tags contain the tag ``test`` (case-insensitive)."""
    hit = tags.astype("string").str.contains(_TEST_TAG, case=False, regex=True)
    return hit.fillna(False).astype(bool)


@dataclass(frozen=True)
class CleanStats:
    """What cleaning removed or changed, for the data-quality summary.

    Attributes:
        rows_in, rows_out: rows before and after.
        test_dropped: rows of ``test``-tagged records (leads only).
        duplicates: exact duplicate rows (leads) or repeated interaction GUIDs (interactions).
        superseded: older versions of a lead replaced by its latest version.
        unseen_sources: non-canonical source labels kept title-cased, with counts.
    """

    rows_in: int
    rows_out: int
    test_dropped: int = 0
    duplicates: int = 0
    superseded: int = 0
    unseen_sources: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict:
        return asdict(self)


def _conform(frame: pd.DataFrame, columns: dict[str, str]) -> pd.DataFrame:
    return frame[list(columns)].astype(columns).reset_index(drop=True)


def empty_leads() -> pd.DataFrame:
    """An empty frame in the cleaned leads contract."""
    return pd.DataFrame({c: pd.Series([], dtype=t) for c, t in LEAD_COLUMNS.items()})


def empty_interactions() -> pd.DataFrame:
    """An empty frame in the cleaned interactions contract."""
    return pd.DataFrame({c: pd.Series([], dtype=t) for c, t in INTERACTION_COLUMNS.items()})


def latest_leads(leads: pd.DataFrame) -> pd.DataFrame:
    """Keep the latest version of each person: greatest ``updated``; ties broken by the later row of the input.

    Args:
        leads: frame with ``person_guid`` and ``updated`` (NaT sorts first).
    Returns:
        One row per person, sorted by person_guid, index reset.
    """
    order = leads.reset_index(drop=True)
    order = order.assign(_pos=range(len(order)))
    order = order.sort_values(["person_guid", "updated", "_pos"], kind="stable", na_position="first")
    return order.drop_duplicates("person_guid", keep="last").drop(columns="_pos").reset_index(drop=True)


def clean_leads(valid: pd.DataFrame) -> tuple[pd.DataFrame, CleanStats]:
    """Clean validated leads into the LEAD_COLUMNS table.

    Drops the personal columns (first_name, last_name, email), normalizes the source, drops exact duplicates, keeps
    the latest version per person (by ``updated``), then drops persons whose latest version is ``test``-tagged.

    Args:
        valid: ``ValidationResult.valid`` of the leads query (typed columns of ``slate.queries.LEADS``).
    Returns:
        (frame with exactly LEAD_COLUMNS in order and dtypes, sorted by person_guid; CleanStats).
    Raises:
        KeyError: a column of the leads query is missing.
    """
    missing = [c for c in LEADS.column_names if c not in valid.columns]
    if missing:
        raise KeyError(f"clean_leads: validated leads lack columns {missing}")
    personal = [c.name for c in LEADS.columns if c.personal]
    frame = valid.drop(columns=personal)
    rows_in = len(frame)
    deduped = frame.drop_duplicates()
    duplicates = rows_in - len(deduped)
    latest = latest_leads(deduped)
    superseded = len(deduped) - len(latest)
    test = is_test_tagged(latest["tags"])
    kept = latest.loc[~test.to_numpy()]
    source = normalize_source(kept["origin_source"])
    out = pd.DataFrame(
        {
            "person_guid": kept["person_guid"],
            "ref": kept["ref"],
            "origin_date": kept["origin_date"],
            "source": source,
            "college": kept["college_of_interest"],
            "application_created": kept["application_created"],
            "is_test": False,
            "updated": kept["updated"],
        }
    )
    out = _conform(out, LEAD_COLUMNS)
    stats = CleanStats(
        rows_in=rows_in,
        rows_out=len(out),
        test_dropped=int(test.sum()),
        duplicates=duplicates,
        superseded=superseded,
        unseen_sources=unseen_sources(out["source"]),
    )
    return out, stats


def clean_interactions(valid: pd.DataFrame) -> tuple[pd.DataFrame, CleanStats]:
    """Clean validated interactions into the INTERACTION_COLUMNS table.

    Drops rows repeating an ``interaction_guid`` already seen (keeping the first), sorts by interaction_guid.

    Args:
        valid: ``ValidationResult.valid`` of the interactions query.
    Returns:
        (frame with exactly INTERACTION_COLUMNS in order and dtypes; CleanStats).
    Raises:
        KeyError: a column of the interactions query is missing.
    """
    missing = [c for c in INTERACTIONS.column_names if c not in valid.columns]
    if missing:
        raise KeyError(f"clean_interactions: validated interactions lack columns {missing}")
    rows_in = len(valid)
    frame = valid.drop_duplicates("interaction_guid", keep="first")
    frame = frame.sort_values("interaction_guid", kind="stable")
    out = _conform(frame, INTERACTION_COLUMNS)
    stats = CleanStats(rows_in=rows_in, rows_out=len(out), duplicates=rows_in - len(out))
    return out, stats


def merge_leads(older: pd.DataFrame, newer: pd.DataFrame) -> pd.DataFrame:
    """Merge two cleaned leads tables keeping the latest version per person (``newer`` wins a tie in ``updated``).

    Args:
        older, newer: frames in the LEAD_COLUMNS contract.
    Returns:
        One row per person in LEAD_COLUMNS, sorted by person_guid.
    """
    both = pd.concat([_conform(older, LEAD_COLUMNS), _conform(newer, LEAD_COLUMNS)], ignore_index=True)
    return _conform(latest_leads(both), LEAD_COLUMNS)
