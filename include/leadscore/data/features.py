"""Point-in-time features of leads: what was known about each lead strictly before a given date.

One feature path serves training and scoring. ``features_at`` describes any set of (lead, date) points, each with its
own date; ``features_as_of`` selects the leads still open at one date and calls ``features_at``. Only interactions
stamped strictly before a point's date count, so a backfilled week gets exactly the features that week would have had.

How it scales (1,000,000 leads x 10 dates against 25,000,000 interactions on 2 cores) without joining interactions to
points: every interaction becomes one sorted int64 key ``((person_code << T) | time) << 4 | channel``. For a point
(person p, date a), ``searchsorted(keys, key(p, a))`` is the number of interactions of all persons ordered before
(p, a); subtracting ``searchsorted(keys, key(p, -inf))`` leaves the interactions of p before a. Per-channel counts are
differences of per-channel cumulative sums at those two positions, a 30-day window is the same difference with the
lower position taken at ``a - 30 days``, and the last engagement is the engagement event just before the upper
position. Distinct URLs count the first ping of each (person, URL) pair the same way.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from leadscore.data.events import EventArrays, EventReadError, StoredInteractions, read_events
from leadscore.data.tables import FEATURE_COLUMNS, FEATURE_FLAGS, FEATURE_NUMERIC
from leadscore.slate.queries import ACTIVITY_CODES, INTERACTION_KINDS

WINDOW_DAYS = 30
MISSING_COLLEGE = "Unknown"
_US_PER_DAY = 86_400 * 1_000_000
_CHANNEL_BITS = 5

# Channels: interaction kinds, with `activity` split by its code. Order fixes the channel numbers (< 2**_CHANNEL_BITS).
_CHANNELS: tuple[str, ...] = (
    "email_sent",
    "email_open",
    "email_click",
    "email_optout",
    "ping_apply",
    "ping_visit",
    "ping_aid",
    "ping_program",
    "ping_other",
    "activity_appointment",
    "activity_chat",
    "activity_email",
    "activity_phone",
    "activity_walkin",
    "activity_other",  # an activity whose code is none of ACTIVITY_CODES: engagement, but no activity_<code> column
    "event_registered",
    "event_attended",
    "event_noshow",
    "event_cancelled",
)
_CH = {name: i for i, name in enumerate(_CHANNELS)}
# Engagement = something the lead did. Sent e-mails are ours, an opt-out is a refusal, and no-shows/cancellations
# are the absence of engagement; they do not reset the recency clock.
_PINGS = ("ping_apply", "ping_visit", "ping_aid", "ping_program", "ping_other")
_ENGAGEMENT = (
    "email_open",
    "email_click",
    *_PINGS,
    "activity_appointment",
    "activity_chat",
    "activity_email",
    "activity_phone",
    "activity_walkin",
    "activity_other",
    "event_registered",
    "event_attended",
)
_ACTIVITY_COLUMN = {code: "activity_" + code.split(" ")[0] for code in ACTIVITY_CODES}  # "phone call" -> activity_phone

# Page kinds by URL path, checked in this order (the first match wins): a page about applying says more about intent
# than a program page that links to the application.
PAGE_KINDS: tuple[str, ...] = ("apply", "visit", "aid", "program", "other")
_PAGE_KIND_PATTERNS: tuple[tuple[str, str], ...] = (
    ("apply", r"apply|applying|applications?|applicants?"),
    ("visit", r"visits?|tours?|open-?house|campus-?visit|info-?sessions?"),
    ("aid", r"aid|financial-?aid|scholarships?|tuition|costs?|net-?price|fafsa|financing"),
    ("program", r"programs?|majors?|minors?|degrees?|academics?|departments?|courses?|curriculum|concentrations?"),
)
# A keyword counts only as a whole path token: "aid" in /financial-aid, never in /said.
_TOKEN = r"(?:^|[^a-z0-9])(?:{})(?:$|[^a-z0-9])"
_PAGE_KIND_REGEX = {kind: re.compile(_TOKEN.format(p)) for kind, p in _PAGE_KIND_PATTERNS}

_POINT_COLUMNS = ("person_guid", "as_of")
_LEAD_COLUMNS_USED = ("person_guid", "origin_date", "source", "college")
_INTERACTION_COLUMNS_USED = ("person_guid", "kind", "detail", "occurred")
_DETAIL_KINDS = ("ping", "activity")  # the kinds whose detail decides the channel (page kind, activity code)


class FeatureInputError(ValueError):
    """The inputs of a feature computation break the cleaned-table contract (data.tables)."""


def ping_page_kind(urls: pd.Series) -> pd.Series:
    """Classify web-ping URLs by the kind of page, from the URL's path.

    Args:
        urls: URLs (full or path only); missing values are allowed.
    Returns:
        A string Series aligned with ``urls``: one of ``apply``, ``visit``, ``aid``, ``program`` or ``other``
        (``other`` also for missing URLs). Keywords must be whole path tokens (split on anything not a letter or
        digit); host, query string and fragment are ignored.
    """
    kinds = np.array(PAGE_KINDS, dtype=object)[_page_kind_codes(urls)]
    return pd.Series(kinds, index=urls.index, dtype="str", name="page_kind")


def _page_kind_codes(urls: pd.Series) -> np.ndarray:
    """Index into PAGE_KINDS of each URL; each distinct URL is classified once."""
    codes, uniques = pd.factorize(urls, use_na_sentinel=True)
    path = (
        pd.Series(uniques, dtype="str")
        .str.lower()
        .str.replace(r"^[a-z][a-z0-9+.\-]*://[^/]*", "", regex=True)
        .str.replace(r"[?#].*$", "", regex=True)
        .to_numpy(dtype=object)
    )
    other = len(PAGE_KINDS) - 1
    kind_of_unique = np.full(len(path) + 1, other, dtype=np.int64)  # the extra slot is for missing URLs
    undecided = np.ones(len(path), dtype=bool)
    for i, regex in enumerate(_PAGE_KIND_REGEX.values()):
        hit = np.fromiter((bool(regex.search(p)) for p in path), dtype=bool, count=len(path)) & undecided
        kind_of_unique[:-1][hit] = i
        undecided &= ~hit
    return kind_of_unique[codes]


def _require(frame: pd.DataFrame, columns: tuple[str, ...], name: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise FeatureInputError(f"{name} lacks column(s) {missing}; it has {list(frame.columns)}")


def _to_us(values: pd.Series, name: str) -> np.ndarray:
    """Timestamps as int64 microseconds since the epoch (tz-aware values converted to UTC); NaT is refused."""
    if isinstance(values.dtype, pd.DatetimeTZDtype):
        values = values.dt.tz_convert("UTC").dt.tz_localize(None)
    if not pd.api.types.is_datetime64_dtype(values.dtype):
        raise FeatureInputError(f"{name} must be datetime64 (see data.tables), got {values.dtype}")
    out = values.to_numpy(dtype="datetime64[us]").view("int64")
    bad = int(np.count_nonzero(values.isna().to_numpy()))
    if bad:
        raise FeatureInputError(f"{name} has {bad} missing timestamp(s); the cleaned tables must not")
    return out


def _arrow_strings(values: pd.Series) -> pa.ChunkedArray:
    """A string column as an Arrow array without copying when it is Arrow-backed already."""
    arr = pa.array(values, from_pandas=True)
    if not (pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type)):
        arr = arr.cast(pa.large_string())
    return arr


def _index_in(values: pa.Array | pa.ChunkedArray, value_set: list[str] | pa.Array) -> np.ndarray:
    """Position of each value in ``value_set`` (-1 when absent or missing)."""
    found = pc.index_in(values, value_set=pa.array(value_set, type=values.type))
    return pc.fill_null(found, -1).to_numpy(zero_copy_only=False).astype(np.int64)


def _person_codes(guids: pd.Series, lead_index: pd.Index) -> np.ndarray:
    """Position of each GUID in ``lead_index`` (-1 when absent); hashing 25M GUID strings is the costliest step."""
    if isinstance(guids.dtype, pd.CategoricalDtype):
        cat_codes = lead_index.get_indexer(guids.cat.categories)
        codes = guids.cat.codes.to_numpy()
        return np.where(codes >= 0, cat_codes[codes], -1).astype(np.int64)
    # Arrow's hash kernel is several times faster than Index.get_indexer on string arrays of this size.
    arr = _arrow_strings(guids)
    return _index_in(arr, _arrow_strings(pd.Series(lead_index)).cast(arr.type))


def _filter(values: pa.Array | pa.ChunkedArray, mask: np.ndarray) -> pa.Array:
    """The rows of ``mask`` as one contiguous Arrow array."""
    out = pc.filter(values, pa.array(mask))
    return out.combine_chunks() if isinstance(out, pa.ChunkedArray) else out


class _EventIndex:
    """Interactions of the described persons as sorted int64 keys ``((code << T) | time) << C | channel``."""

    def __init__(self, events: EventArrays, n_persons: int) -> None:
        chan, ping_url = self._channels(events)
        code = events.code
        occ = events.occurred_us

        # Exact strict "before" needs a unit that divides every event time; then for a query time q,
        # `event < q` <=> `event_units < ceil(q / unit)`. Slate datetimes are whole seconds.
        self.unit_us = 1
        for unit in (1_000_000, 1_000):
            if not (occ % unit).any():
                self.unit_us = unit
                break
        self.base_us = int(occ.min()) if len(occ) else 0
        t = (occ - self.base_us) // self.unit_us
        del occ
        span = int(t.max()) if len(t) else 0
        self.time_bits = (span + 1).bit_length()  # every event time < 2**time_bits - 1, the clamp of late queries
        code_bits = max(1, n_persons.bit_length())
        if code_bits + self.time_bits + _CHANNEL_BITS > 63:
            raise FeatureInputError(
                f"{n_persons} persons and interaction times spanning {span} units of {self.unit_us} us do "
                "not fit the 63-bit sort key; store `occurred` at whole seconds (as Slate does)"
            )
        self.code_shift = self.time_bits + _CHANNEL_BITS
        plain = (code.astype(np.int64) << self.time_bits) | t
        del t
        is_ping = ping_url > -2
        self.first_url_keys = _first_keys(plain[is_ping], ping_url[is_ping], self.time_bits)
        del is_ping, ping_url
        keys = (plain << _CHANNEL_BITS) | chan
        del plain, chan
        keys.sort()  # a plain sort of packed keys is ~2.5x faster than an argsort
        self.keys = keys
        self.chan = (keys & ((1 << _CHANNEL_BITS) - 1)).astype(np.int8)
        self.n = len(keys)
        # Key positions of each channel's events, ascending (a stable sort by channel): a count over key positions
        # [lo, hi) is then two binary searches per channel instead of a pass over every event.
        by_channel = np.argsort(self.chan, kind="stable").astype(np.int32)
        bounds = np.searchsorted(self.chan[by_channel], np.arange((1 << _CHANNEL_BITS) + 1))
        self.positions = [by_channel[bounds[c] : bounds[c + 1]] for c in range(1 << _CHANNEL_BITS)]

    @staticmethod
    def _channels(events: EventArrays) -> tuple[np.ndarray, np.ndarray]:
        """Channel of each event, and the URL code of each ping (-1 when missing; -2 for events that are no ping).

        Each distinct (kind, detail) pair is classified once, then mapped to the events by the pair index.
        """
        kinds = list(INTERACTION_KINDS)
        pair_kind = pa.array(events.pair_kind, type=pa.large_string())
        kcode = _index_in(pair_kind, kinds)
        unknown = kcode[events.pair] < 0
        if unknown.any():
            per_pair = np.bincount(events.pair[unknown], minlength=len(kcode))
            bad = {events.pair_kind[i]: int(per_pair[i]) for i in np.argsort(-per_pair)[:5] if per_pair[i]}
            raise FeatureInputError(
                f"interactions has {int(unknown.sum())} row(s) of unknown kind {bad}; known kinds: {kinds} "
                "(the cleaning step should quarantine them)"
            )
        chan = np.array([_CH.get(k, -1) for k in kinds] + [-1], dtype=np.int64)[kcode]
        detail = pa.array(events.pair_detail, type=pa.large_string())

        is_ping = kcode == kinds.index("ping")
        urls = _filter(detail, is_ping)
        url_code = np.full(len(kcode), -2, dtype=np.int64)
        url_code[is_ping] = np.where(pc.is_null(urls).to_numpy(zero_copy_only=False), -1, 0)
        url_code[url_code == 0] = np.arange(int((url_code == 0).sum()))  # pairs are distinct: one code per URL
        kind_of_url = _page_kind_codes(urls.to_pandas())
        ping_chan = np.array([_CH["ping_" + k] for k in PAGE_KINDS], dtype=np.int64)
        chan[is_ping] = ping_chan[kind_of_url]

        is_activity = kcode == kinds.index("activity")
        act = pc.utf8_lower(pc.utf8_trim_whitespace(_filter(detail, is_activity)))
        acode = _index_in(act, list(ACTIVITY_CODES))
        act_chan = np.array([_CH[_ACTIVITY_COLUMN[c]] for c in ACTIVITY_CODES] + [_CH["activity_other"]])
        chan[is_activity] = act_chan[np.where(acode >= 0, acode, len(ACTIVITY_CODES))]
        return chan.astype(np.int8)[events.pair], url_code.astype(np.int32)[events.pair]

    def query_keys(self, code: np.ndarray, when_us: np.ndarray) -> np.ndarray:
        """Keys that sort after every event of ``code`` strictly before ``when_us`` and before all others."""
        units = -((self.base_us - when_us) // self.unit_us)  # ceil((when - base) / unit)
        units = np.clip(units, 0, (1 << self.time_bits) - 1)
        return ((code << self.time_bits) | units) << _CHANNEL_BITS

    def mask(self, channels: tuple[str, ...]) -> np.ndarray:
        """Which events (in key order) belong to ``channels``."""
        lut = np.zeros(1 << _CHANNEL_BITS, dtype=bool)
        lut[[_CH[c] for c in channels]] = True
        return lut[self.chan]

    def count(self, channels: tuple[str, ...], upper: np.ndarray, lower: np.ndarray) -> np.ndarray:
        """Events in ``channels`` between key positions ``lower`` and ``upper`` (float64)."""
        total = np.zeros(len(upper), dtype=np.int64)
        for c in channels:
            pos = self.positions[_CH[c]]
            total += np.searchsorted(pos, upper) - np.searchsorted(pos, lower)
        return total.astype(np.float64)

    def prefix(self, channels: tuple[str, ...]) -> np.ndarray:
        """Prefix counts (length n+1) of events in ``channels`` in key order."""
        out = np.zeros(self.n + 1, dtype=np.int32)
        np.cumsum(self.mask(channels), out=out[1:])
        return out


def _first_keys(plain: np.ndarray, url_code: np.ndarray, time_bits: int) -> np.ndarray:
    """Sorted (person, time) keys of the first ping of each (person, URL); pings without a URL are skipped."""
    has_url = url_code >= 0
    plain, url_code = plain[has_url], url_code[has_url]
    order = np.argsort(plain, kind="stable")
    plain, url_code = plain[order], url_code[order]
    n_urls = np.int64(int(url_code.max()) + 1 if len(url_code) else 1)
    pair = (plain >> time_bits) * n_urls + url_code
    # in (person, time) order the first row of a pair is that URL's earliest ping by the person
    first = ~pd.Series(pair).duplicated(keep="first").to_numpy()
    return plain[first]


def features_at(
    points: pd.DataFrame, leads: pd.DataFrame, interactions: pd.DataFrame | StoredInteractions
) -> pd.DataFrame:
    """Features of each (lead, date) point from what was known strictly before the point's date.

    Args:
        points: columns ``person_guid`` and ``as_of`` (datetime64); one row per (lead, date) to describe, dates may
            differ per row, a lead may appear at several dates.
        leads: the cleaned leads table (data.tables.LEAD_COLUMNS); ``person_guid`` unique.
        interactions: the cleaned interactions table (data.tables.INTERACTION_COLUMNS), or the store's history as
            known at a date (``data.events.stored_interactions``: read straight from the Parquet extracts, the same
            rows as ``ExtractStore.read_all``). Interactions of persons that are not among the points are ignored.
    Returns:
        One row per point, same order, index reset: ``person_guid``, ``as_of`` and every column of
        data.tables.FEATURE_COLUMNS. Only interactions with ``occurred < as_of`` count; 30-day windows are
        ``[as_of - 30 days, as_of)``. Numeric features float64, flags int8, categoricals strings.
        days_as_lead = (as_of - origin_date) in days; email rates = count / sent (0 when none sent, see
        no_email_sent); days_since_last_engagement counts from the last open, click, ping, activity, event
        registration or attendance (days_as_lead when there is none, see never_engaged); distinct_urls counts
        distinct non-missing ping URLs; ping_<kind> by ping_page_kind; activity_<code> by ACTIVITY_CODES (an
        unknown activity code still counts as engagement); opted_out = any email_optout; college "Unknown" when
        missing or blank (see college_missing); source as given.
    Raises:
        FeatureInputError: a required column is missing, a point names a person not in ``leads``, ``leads`` repeats a
            person, a timestamp or source is missing, or an interaction kind is unknown.
    """
    _require(points, _POINT_COLUMNS, "points")
    _require(leads, _LEAD_COLUMNS_USED, "leads")
    if isinstance(interactions, pd.DataFrame):
        _require(interactions, _INTERACTION_COLUMNS_USED, "interactions")

    lead_index = pd.Index(leads["person_guid"])
    if not lead_index.is_unique:
        dup = lead_index[lead_index.duplicated()]
        raise FeatureInputError(
            f"leads repeats {len(dup)} person_guid(s), e.g. {list(dup[:3])}; keep one row per person"
        )
    pcode = _person_codes(points["person_guid"], lead_index)
    if (pcode < 0).any():
        unknown = points["person_guid"].to_numpy()[pcode < 0]
        raise FeatureInputError(f"{len(unknown)} point(s) name persons not in leads, e.g. {list(unknown[:3])}")
    as_of = _to_us(points["as_of"], "points.as_of")
    origin = _to_us(leads["origin_date"], "leads.origin_date")[pcode]
    n = len(points)

    needed = np.zeros(len(lead_index), dtype=bool)
    needed[pcode] = True
    try:
        events = read_events(interactions, leads["person_guid"], _DETAIL_KINDS, wanted=needed)
    except EventReadError as err:
        raise FeatureInputError(str(err)) from err
    ev = _EventIndex(events, len(lead_index))
    del events

    # Sorted queries let searchsorted reuse its bounds (about 25x faster than random order at 10M points).
    q_hi = ev.query_keys(pcode, as_of)
    order = np.argsort(q_hi, kind="stable")
    q_hi = q_hi[order]
    code_s = pcode[order]
    q_lo = code_s << ev.code_shift
    q_win = ev.query_keys(code_s, as_of[order] - WINDOW_DAYS * _US_PER_DAY)
    hi = np.searchsorted(ev.keys, q_hi, side="left")
    lo = np.searchsorted(ev.keys, q_lo, side="left")
    win = np.searchsorted(ev.keys, q_win, side="left")

    inverse = np.empty(n, dtype=np.int64)
    inverse[order] = np.arange(n)
    col: dict[str, np.ndarray] = {}

    counts: dict[str, tuple[str, ...]] = {
        "email_sent": ("email_sent",),
        "email_open": ("email_open",),
        "email_click": ("email_click",),
        "pings": _PINGS,
        **{"ping_" + kind: ("ping_" + kind,) for kind in PAGE_KINDS[:-1]},
        **{_ACTIVITY_COLUMN[code]: (_ACTIVITY_COLUMN[code],) for code in ACTIVITY_CODES},
        "events_registered": ("event_registered",),
        "events_attended": ("event_attended",),
    }
    for name, channels in counts.items():
        col[name] = ev.count(channels, hi, lo)[inverse]
    for name in ("email_sent", "email_open", "email_click", "pings"):
        col[name + "_30d"] = ev.count(counts[name], hi, win)[inverse]
    optouts = ev.count(("email_optout",), hi, lo)[inverse]

    q_hi_plain = q_hi >> _CHANNEL_BITS
    q_lo_plain = q_lo >> _CHANNEL_BITS
    first = ev.first_url_keys
    col["distinct_urls"] = (np.searchsorted(first, q_hi_plain) - np.searchsorted(first, q_lo_plain)).astype(np.float64)[
        inverse
    ]

    days_as_lead = (as_of - origin) / _US_PER_DAY
    col["days_as_lead"] = days_as_lead

    eng_mask = ev.mask(_ENGAGEMENT)
    eng = np.zeros(ev.n + 1, dtype=np.int32)
    np.cumsum(eng_mask, out=eng[1:])
    n_before = eng[hi]
    engaged_s = n_before > eng[lo]
    eng_units = (ev.keys[eng_mask] >> _CHANNEL_BITS) & ((1 << ev.time_bits) - 1)
    del eng_mask
    last_us = np.zeros(n, dtype=np.int64)
    if engaged_s.any():
        last_s = np.zeros(n, dtype=np.int64)
        last_s[engaged_s] = ev.base_us + eng_units[n_before[engaged_s] - 1] * ev.unit_us
        last_us = last_s[inverse]
    engaged = engaged_s[inverse]
    col["days_since_last_engagement"] = np.where(engaged, (as_of - last_us) / _US_PER_DAY, days_as_lead)
    # free the event index and per-point positions before the frame's string columns are built
    del ev, eng, eng_units, hi, lo, win, q_hi, q_lo, q_win, q_hi_plain, q_lo_plain, code_s, last_us, n_before

    sent = col["email_sent"]
    with np.errstate(divide="ignore", invalid="ignore"):
        col["email_open_rate"] = np.where(sent > 0, col["email_open"] / sent, 0.0)
        col["email_click_rate"] = np.where(sent > 0, col["email_click"] / sent, 0.0)

    college = leads["college"].take(pcode).reset_index(drop=True).astype("str")
    college_missing = (college.isna() | (college.str.strip() == "")).to_numpy(dtype=bool, na_value=True)
    source = leads["source"].take(pcode).reset_index(drop=True).astype("str")
    if source.isna().any():
        raise FeatureInputError(
            f"leads.source is missing for {int(source.isna().sum())} point(s); the cleaned leads table requires it"
        )
    flags = {
        "college_missing": college_missing,
        "no_email_sent": sent == 0,
        "never_engaged": ~engaged,
        "opted_out": optouts > 0,
    }
    out: dict[str, object] = {
        "person_guid": points["person_guid"].reset_index(drop=True).astype("str"),
        "as_of": pd.Series(as_of.view("datetime64[us]"), copy=False),
    }
    # copy=False: pandas 3 copies arrays into a new Series by default, which at 10M rows costs ~2 GB
    values = {name: pd.Series(col[name], dtype="float64", copy=False) for name in FEATURE_NUMERIC}
    values.update({name: pd.Series(flags[name].astype(np.int8), copy=False) for name in FEATURE_FLAGS})
    values["source"] = source
    values["college"] = college.mask(pd.Series(college_missing), MISSING_COLLEGE)
    out.update({name: values[name] for name in FEATURE_COLUMNS})
    frame = pd.DataFrame(out, copy=False)  # no consolidation copy: at 10M rows that doubles the peak
    return frame


def open_leads_mask(leads: pd.DataFrame, as_of: pd.Timestamp) -> np.ndarray:
    """Which leads are open at ``as_of``: originated before it, no application created before it, not test.

    An application stamped exactly at ``as_of`` is not yet known to a run whose extracts end at ``as_of``
    (intervals are half-open), so such a lead is still open.
    """
    _require(leads, ("origin_date", "application_created", "is_test"), "leads")
    as_of = _timestamp(as_of)
    origin = leads["origin_date"]
    app = leads["application_created"]
    is_test = leads["is_test"].to_numpy(dtype=bool)
    return ((origin < as_of) & ~(app < as_of).fillna(False)).to_numpy(dtype=bool, na_value=False) & ~is_test


def _timestamp(value: object) -> pd.Timestamp:
    ts = pd.Timestamp(value)
    if ts is pd.NaT:
        raise FeatureInputError("as_of is missing")
    if ts.tzinfo is not None:
        ts = ts.tz_convert("UTC").tz_localize(None)
    return ts


def features_as_of(
    leads: pd.DataFrame, interactions: pd.DataFrame | StoredInteractions, as_of: pd.Timestamp
) -> pd.DataFrame:
    """Features of every lead still open at ``as_of``: the one feature path for training and scoring.

    Args:
        leads: the cleaned leads table (data.tables.LEAD_COLUMNS).
        interactions: the cleaned interactions table or the store's history (as ``features_at``).
        as_of: the date to describe the leads at (tz-naive UTC; a tz-aware value is converted).
    Returns:
        One row per open lead (see ``open_leads_mask``), in the order of ``leads``, with ``person_guid``, ``as_of``
        and every column of FEATURE_COLUMNS, computed by ``features_at`` from interactions strictly before ``as_of``.
    Raises:
        FeatureInputError: as ``features_at``.
    """
    as_of = _timestamp(as_of)
    mask = open_leads_mask(leads, as_of)
    guids = leads["person_guid"].to_numpy()[mask]
    points = pd.DataFrame(
        {
            "person_guid": pd.Series(guids, dtype="str"),
            "as_of": pd.Series(np.full(len(guids), as_of), dtype="datetime64[us]"),
        }
    )
    return features_at(points, leads, interactions)
