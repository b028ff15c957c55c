"""Records that change after they were first served: late interactions, edited leads, merged and deleted persons.

A real Slate is not append-only. The sandbox simulates, at the rates of ``DirtRates``:

- **late interactions**: an interaction whose stamp (``occurred``) is days before the moment it reaches Slate
  (``_arrived``): event attendance uploaded after the event, activities logged by a counselor days later. A pull whose
  ``until`` is before the arrival does not see it; a later pull whose window still covers its stamp does.
- **lead changes**: at ``_changed`` (after creation) a lead's source, college of interest or tags change (a corrected
  import, a student who names a college, a record found to be a test record); the lead's ``updated`` moves to the
  change, so a pull whose window holds the change serves the lead again with its new values.
- **merged persons**: at ``_gone`` the record is merged into another person (``_merged_into``, the survivor): it is no
  longer served by ``leads`` or ``persons``, and its interactions are served under the survivor's GUID.
- **deleted persons**: at ``_gone`` the record and its interactions disappear.

Every function is pure given its generator, so the generator's other streams do not move when a rate changes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from leadscore.sandbox.truth import DAY_US

NEVER = np.iinfo(np.int64).min  # int64 stamp of "never" (as the generator's other hidden times)
LATE_DAYS = (1.0, 12.0)  # delay range of late interactions: within the default 14-day overlap of the weekly pulls
CHANGE_DAYS = (1.0, 120.0)  # days after creation when a lead changes
MERGE_DAYS = (1.0, 90.0)  # days after the later creation of the pair when a duplicate is merged
DELETE_DAYS = (7.0, 365.0)  # days after creation when a record is deleted (purges)
CHANGED_TO_TEST = 0.25  # share of tag changes that mark the record a test record


@dataclass(frozen=True)
class PersonHistory:
    """Per person (generator order): when and how the record changes, and when it is merged or deleted."""

    changed_us: np.ndarray  # int64 us, NEVER when the lead never changes
    new_label: np.ndarray  # source label index after the change (same as before when the source stays)
    new_college: np.ndarray  # college index after the change (-1 none)
    new_tag: np.ndarray  # tag code after the change (-1 none, 0 test, 1 vip)
    gone_us: np.ndarray  # int64 us, NEVER while the record exists
    merged_into: np.ndarray  # person index of the survivor, -1 for a deletion or no merge
    counts: dict[str, int]


def _uniform_days(rng: np.random.Generator, k: int, bounds: tuple[float, float]) -> np.ndarray:
    us = (rng.uniform(bounds[0], bounds[1], k) * DAY_US).astype(np.int64)
    return us - us % 1_000_000  # whole seconds, as every wire stamp


def simulate_person_history(
    rng: np.random.Generator,
    created_us: np.ndarray,
    end_us: int,
    label: np.ndarray,
    college: np.ndarray,
    tag: np.ndarray,
    n_labels: int,
    n_colleges: int,
    rates: object,
) -> PersonHistory:
    """Choose the leads that change and the persons that are merged or deleted before ``end_us``.

    Args:
        rng: the history's own generator. created_us: creation stamps (int64 us). end_us: the sandbox's "now".
        label, college, tag: each person's source label index, college index (-1 none), tag code (-1, 0 test, 1 vip).
        n_labels, n_colleges: sizes of the label and college vocabularies.
        rates: a DirtRates (lead_changes, merged_persons, deleted_persons).
    Returns:
        A PersonHistory; only events before ``end_us`` are kept (the others never happened yet).
    """
    n = created_us.size
    counts: dict[str, int] = {}
    changed = np.full(n, NEVER, dtype=np.int64)
    new_label, new_college, new_tag = label.copy(), college.copy(), tag.copy()
    rows = np.flatnonzero(rng.random(n) < rates.lead_changes)
    when = created_us[rows] - created_us[rows] % 1_000_000 + _uniform_days(rng, rows.size, CHANGE_DAYS)
    rows = rows[when < end_us]
    changed[rows] = when[when < end_us]
    what = rng.integers(0, 3, rows.size)  # 0 source, 1 college, 2 tags
    src = rows[what == 0]
    new_label[src] = (label[src] + rng.integers(1, n_labels, src.size)) % n_labels
    col = rows[what == 1]
    code = np.where(college[col] < 0, n_colleges, college[col])  # "none" as code n_colleges
    code = (code + 1 + rng.integers(0, n_colleges, col.size)) % (n_colleges + 1)  # always another code
    new_college[col] = np.where(code == n_colleges, -1, code)
    tg = rows[what == 2]
    new_tag[tg] = np.where(rng.random(tg.size) < CHANGED_TO_TEST, 0, np.where(tag[tg] == 1, -1, 1))
    counts["lead_changes"] = int(rows.size)

    gone = np.full(n, NEVER, dtype=np.int64)
    merged_into = np.full(n, -1, dtype=np.int64)
    if n > 1:
        dup = np.flatnonzero(rng.random(n) < rates.merged_persons)
        survivor = rng.integers(0, n - 1, dup.size)
        survivor = survivor + (survivor >= dup)  # never itself
        when = np.maximum(created_us[dup], created_us[survivor]) + _uniform_days(rng, dup.size, MERGE_DAYS)
        # a survivor is never merged away itself (a chain would need the survivor's survivor)
        ok = (when < end_us) & ~np.isin(survivor, dup)
        dup, survivor, when = dup[ok], survivor[ok], when[ok]
        gone[dup], merged_into[dup] = when, survivor
    else:
        dup = np.zeros(0, dtype=np.int64)
    counts["merged_persons"] = int(dup.size)
    deleted = np.flatnonzero(rng.random(n) < rates.deleted_persons)
    deleted = deleted[(gone[deleted] == NEVER) & ~np.isin(deleted, merged_into)]
    when = created_us[deleted] + _uniform_days(rng, deleted.size, DELETE_DAYS)
    deleted, when = deleted[when < end_us], when[when < end_us]
    gone[deleted] = when
    counts["deleted_persons"] = int(deleted.size)
    return PersonHistory(changed, new_label, new_college, new_tag, gone, merged_into, counts)


def late_arrivals(rng: np.random.Generator, occurred_us: np.ndarray, rate: float) -> tuple[np.ndarray, int]:
    """When each interaction reaches Slate: at its stamp, or (share ``rate``) 1 to 12 days later.

    Returns:
        (arrival stamps, int64 us; the count of late interactions).
    """
    late = rng.random(occurred_us.size) < rate
    arrived = occurred_us.copy()
    arrived[late] += _uniform_days(rng, int(late.sum()), LATE_DAYS)
    return arrived, int(late.sum())
