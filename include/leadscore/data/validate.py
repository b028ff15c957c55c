"""Schema validation of a query's raw answer: parse Slate's strings by type, quarantine the rows that break the schema.

Every row ends up either in ``valid`` (typed) or in ``quarantined`` (its raw strings plus the ``reason`` and the
``column`` of its first failure); none is dropped silently. Reasons:

- ``missing_<col>``: a required column is NULL or blank.
- ``invalid_guid``: a uniqueidentifier that is not a GUID.
- ``unparseable_date``: a datetime in none of the formats seen in Slate exports.
- ``impossible_date``: a datetime in a known format that names no real moment (2021-02-30, 0000-00-00, an offset
  beyond +-14:00), a year outside 1990..2100, or a moment later than the extract's ``not_after`` bound (the
  window's end: the query returns only rows stamped before it, so a later stamp is a data error).
- ``invalid_int`` / ``invalid_real`` / ``invalid_bit``: a number that is not one after cleaning.
- ``unknown_kind``: an interaction kind outside ``slate.queries.INTERACTION_KINDS``.

Datetimes are returned as naive UTC. A stamp with ``Z`` or an offset (``+hh:mm``, ``-hhmm``) is converted by it; a
naive one is the instance's wall time (``LEADSCORE_SLATE_TIMEZONE``) and is converted by the zone's rules
(``slate.wall_time``: the first occurrence in the repeated hour, shifted forward out of the skipped one). Fractions
of 1-7 digits are kept to the microsecond (a 7th digit is truncated). GUIDs are trimmed, lower-cased and stripped of
braces, the form every key, join, extract and score file uses.

Unexpected extra columns are dropped and reported in ``extra_columns``; personal columns are kept in ``valid`` (the
cleaning step drops them) but never written into the quarantine.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from leadscore.slate.queries import INTERACTION_KINDS, INTERACTIONS, Column, QuerySpec
from leadscore.slate.wall_time import UTC_NAME, wall_to_utc

MIN_YEAR = 1990
MAX_YEAR = 2100
MAX_OFFSET_MINUTES = 14 * 60  # the widest UTC offsets in use are -12:00 and +14:00

_GUID = r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"
_CONTROL = r"[\x00-\x1f\x7f]"
# "YYYY-MM-DDTHH:MM:SS", "YYYY-MM-DD HH:MM:SS" (optionally 1-7 fractional digits and "Z", "+hh:mm", "-hhmm" or
# " -05:00" as SQL Server writes a datetimeoffset), "YYYY-MM-DD".
_ISO = (
    r"^(?P<year>\d{4})-(?P<month>\d{1,2})-(?P<day>\d{1,2})"
    r"(?:[T ](?P<hour>\d{1,2}):(?P<minute>\d{2})(?::(?P<second>\d{2})(?:\.(?P<frac>\d{1,7}))?)?"
    r"(?: ?(?P<zulu>[Zz])| ?(?P<sign>[+-])(?P<offh>\d{2}):?(?P<offm>\d{2}))?)?$"
)
# "MM/DD/YYYY HH:MM" (optionally :SS and AM/PM), "MM/DD/YYYY".
_US = (
    r"^(?P<month>\d{1,2})/(?P<day>\d{1,2})/(?P<year>\d{4})"
    r"(?:\s+(?P<hour>\d{1,2}):(?P<minute>\d{2})(?::(?P<second>\d{2}))?\s*(?P<ampm>[AaPp][Mm])?)?$"
)
_INT = r"^[+-]?(?:\d+|\d{1,3}(?:,\d{3})+)(?:\.0*)?$"
_PARTS = ("year", "month", "day", "hour", "minute", "second")

PANDAS_DTYPES: dict[str, str] = {
    "uniqueidentifier": "string",
    "varchar": "string",
    "datetime": "datetime64[us]",
    "date": "datetime64[us]",
    "int": "Int64",
    "real": "Float64",
    "bit": "boolean",
}


class QuarantineLimitError(RuntimeError):
    """More rows than the configured share were quarantined: the extract is not trustworthy enough to store."""


@dataclass(frozen=True)
class ValidationResult:
    """The outcome of validating one query's raw answer.

    Attributes:
        query: query name.
        valid: rows that passed, one column per query column, typed (see PANDAS_DTYPES); raw index kept.
        quarantined: rows that failed: their raw strings (no personal columns) plus ``reason`` and ``column``.
        counts_by_reason: reason -> number of quarantined rows.
        extra_columns: unexpected column -> number of non-NULL values it carried (the column was dropped).
        rows_in: rows of the raw answer.
    """

    query: str
    valid: pd.DataFrame = field(repr=False)
    quarantined: pd.DataFrame = field(repr=False)
    counts_by_reason: dict[str, int]
    extra_columns: dict[str, int]
    rows_in: int

    @property
    def quarantined_share(self) -> float:
        """Share of the raw rows that were quarantined (0 for an empty answer)."""
        return len(self.quarantined) / self.rows_in if self.rows_in else 0.0


def _blank_to_na(values: pd.Series) -> pd.Series:
    stripped = values.astype("string").str.strip()
    return stripped.mask(stripped == "")


def parse_guid(values: pd.Series) -> tuple[pd.Series, pd.Series]:
    """Trim, lower-case and strip braces of GUID strings.

    Returns (parsed ``string`` series with NA where missing or invalid, boolean mask of present-but-invalid values).
    """
    text = _blank_to_na(values).str.lower().str.strip("{}")
    ok = text.str.fullmatch(_GUID).fillna(False).astype(bool)
    present = text.notna().to_numpy()
    return text.where(ok), pd.Series(present & ~ok.to_numpy(), index=values.index)


def _arrow_text(values: pd.Series) -> pa.Array:
    """Trimmed strings as one arrow array; blank becomes null."""
    arr = pa.array(values.astype("string"), type=pa.large_string())
    if isinstance(arr, pa.ChunkedArray):  # a frame concatenated from pages holds several chunks
        arr = arr.combine_chunks()
    arr = pc.utf8_trim_whitespace(arr)
    return pc.if_else(pc.equal(arr, ""), pa.scalar(None, pa.large_string()), arr)


def _field(parts: pa.StructArray, name: str) -> np.ndarray:
    """An optional regex group as floats: NaN where the row did not match, 0 where the group was empty."""
    text = parts.field(name)
    text = pc.if_else(pc.equal(text, ""), pa.scalar("0", text.type), text)
    return pc.cast(text, pa.int64()).to_numpy(zero_copy_only=False).astype(float)


def parse_datetime(
    values: pd.Series, not_after: pd.Timestamp | None = None, timezone: str = UTC_NAME
) -> tuple[pd.Series, pd.Series, pd.Series]:
    """Parse Slate datetime strings in the formats seen in exports, to naive UTC.

    Formats: ``YYYY-MM-DDTHH:MM:SS``, ``YYYY-MM-DD HH:MM:SS``, ``YYYY-MM-DD``, ``MM/DD/YYYY HH:MM``, ``MM/DD/YYYY``
    (optional seconds, AM/PM on US; on ISO 1-7 fractional digits and an offset ``Z``, ``+hh:mm``, ``-hhmm``).

    Args:
        values: strings (NA = NULL).
        not_after: latest plausible moment, naive UTC (e.g. the extract's window end); later values are impossible.
        timezone: the instance's IANA zone, in which stamps without an offset are wall time.
    Returns:
        (``datetime64[us]`` series of UTC moments, NaT where missing or bad; mask of values in no known format; mask
        of values in a known format that name no real or plausible moment).
    Raises:
        TimeZoneError: unknown zone name.
    """
    text = _arrow_text(values)
    iso = pc.extract_regex(text, _ISO)
    us = pc.extract_regex(text, _US)
    iso_ok = ~np.asarray(pc.is_null(iso).to_numpy(zero_copy_only=False), dtype=bool)
    us_ok = ~np.asarray(pc.is_null(us).to_numpy(zero_copy_only=False), dtype=bool)
    comp = {}
    for name in _PARTS:
        comp[name] = np.where(iso_ok, _field(iso, name), _field(us, name))
    ampm = pc.utf8_lower(us.field("ampm")).to_numpy(zero_copy_only=False)
    pm = us_ok & (ampm == "pm")
    am = us_ok & (ampm == "am")
    hour = comp["hour"]
    bad_12h = (am | pm) & ((hour < 1) | (hour > 12))
    hour = np.where(pm & (hour < 12), hour + 12, np.where(am & (hour == 12), 0, hour))
    matched = iso_ok | us_ok
    present = ~np.asarray(pc.is_null(text).to_numpy(zero_copy_only=False), dtype=bool)
    y, mo, d, mi, se = comp["year"], comp["month"], comp["day"], comp["minute"], comp["second"]
    ok = matched & ~bad_12h & (y >= MIN_YEAR) & (y <= MAX_YEAR) & (mo >= 1) & (mo <= 12) & (d >= 1)
    ok &= (hour <= 23) & (mi <= 59) & (se <= 59)
    zulu = iso_ok & np.asarray(pc.not_equal(iso.field("zulu"), "").to_numpy(zero_copy_only=False), dtype=bool)
    signed = iso_ok & np.asarray(pc.not_equal(iso.field("sign"), "").to_numpy(zero_copy_only=False), dtype=bool)
    sign = np.where(pc.equal(iso.field("sign"), "-").to_numpy(zero_copy_only=False), -1, 1)
    offh, offm = np.where(signed, _field(iso, "offh"), 0), np.where(signed, _field(iso, "offm"), 0)
    ok &= (offm <= 59) & (offh * 60 + offm <= MAX_OFFSET_MINUTES)
    offset_us = np.where(signed, sign * (offh * 60 + offm), 0).astype("int64") * 60_000_000
    frac = pc.utf8_slice_codeunits(pc.utf8_rpad(iso.field("frac"), width=6, padding="0"), 0, 6)
    micros = np.where(iso_ok, pc.cast(frac, pa.int64()).to_numpy(zero_copy_only=False), 0).astype("int64")
    # Build the timestamps with numpy (month arithmetic) and reject days past the month's end (e.g. Feb 30).
    months = np.where(ok, (y - 1970) * 12 + (mo - 1), 0).astype("int64").astype("datetime64[M]")
    first = months.astype("datetime64[D]")
    days_in_month = ((months + 1).astype("datetime64[D]") - first).astype(int)
    ok &= d <= days_in_month
    day = np.where(ok, d - 1, 0).astype("int64").astype("timedelta64[D]")
    secs = np.where(ok, hour * 3600 + mi * 60 + se, 0).astype("int64").astype("timedelta64[s]")
    stamps = (first + day).astype("datetime64[us]") + secs + micros.astype("timedelta64[us]")
    stamps = np.where(ok, stamps, np.datetime64("NaT", "us"))
    explicit = zulu | signed
    # An offset says which moment it is; a naive stamp is the instance's wall time.
    stamps = np.where(explicit, stamps - offset_us.astype("timedelta64[us]"), stamps)
    naive = ok & ~explicit
    if naive.any():
        stamps[naive] = wall_to_utc(stamps[naive], timezone)
    if not_after is not None:
        ok &= stamps <= np.datetime64(pd.Timestamp(not_after), "us")
        stamps = np.where(ok, stamps, np.datetime64("NaT", "us"))
    index = values.index
    return (
        pd.Series(stamps, index=index, dtype="datetime64[us]"),
        pd.Series(present & ~matched, index=index),
        pd.Series(matched & ~ok, index=index),
    )


def parse_int(values: pd.Series) -> tuple[pd.Series, pd.Series]:
    """Parse integers written as Slate/spreadsheet strings: " 00123", "1,234", "1234.0", "+7".

    Returns (``Int64`` series, NA where missing or invalid; mask of present-but-invalid values).
    """
    text = _arrow_text(values)
    text = pc.replace_substring_regex(text, r"\s+", "")
    ok = pc.fill_null(pc.match_substring_regex(text, _INT), False)
    digits = pc.replace_substring_regex(text, r"[,+\-]|\.0*$", "")
    ok = pc.and_(ok, pc.fill_null(pc.less_equal(pc.utf8_length(digits), 18), False))  # fits int64
    cleaned = pc.if_else(ok, digits, pa.scalar(None, digits.type))
    sign = pc.if_else(pc.starts_with(text, "-"), -1, 1)
    number = pc.multiply(pc.cast(cleaned, pa.int64()), sign)
    parsed = pd.Series(pd.arrays.ArrowExtensionArray(number), index=values.index).astype("Int64")
    present = ~np.asarray(pc.is_null(text).to_numpy(zero_copy_only=False), dtype=bool)
    bad = present & ~np.asarray(ok.to_numpy(zero_copy_only=False), dtype=bool)
    return parsed, pd.Series(bad, index=values.index)


def parse_real(values: pd.Series) -> tuple[pd.Series, pd.Series]:
    """Parse decimal strings (thousands commas allowed). Returns (``Float64`` series, mask of invalid values)."""
    text = _blank_to_na(values).str.replace(r"[\s,]", "", regex=True)
    parsed = pd.to_numeric(text, errors="coerce").astype("Float64")
    bad = text.notna().to_numpy() & parsed.isna().to_numpy()
    return parsed.mask(pd.Series(bad, index=values.index)), pd.Series(bad, index=values.index)


def parse_bit(values: pd.Series) -> tuple[pd.Series, pd.Series]:
    """Parse Slate bits ("1"/"0", "true"/"false"). Returns (``boolean`` series, mask of invalid values)."""
    text = _blank_to_na(values).str.lower()
    mapped = text.map({"1": True, "0": False, "true": True, "false": False}, na_action="ignore")
    parsed = mapped.astype("boolean")
    bad = text.notna().to_numpy() & parsed.isna().to_numpy()
    return parsed, pd.Series(bad, index=values.index)


def clean_varchar(values: pd.Series) -> pd.Series:
    """Replace control characters by spaces and trim; blank becomes NA. Returns a ``string`` series."""
    text = values.astype("string").str.replace(_CONTROL, " ", regex=True).str.strip()
    return text.mask(text == "")


def _parse_column(
    col: Column, raw: pd.Series, not_after: pd.Timestamp | None, timezone: str
) -> tuple[pd.Series, list[tuple]]:
    """(parsed series, [(reason, bad mask), ...]) of one column."""
    if col.slate_type == "uniqueidentifier":
        parsed, bad = parse_guid(raw)
        return parsed, [("invalid_guid", bad)]
    if col.slate_type in ("datetime", "date"):
        # A `date` is a calendar day, not a moment: no zone applies to it.
        zone = timezone if col.slate_type == "datetime" else UTC_NAME
        parsed, unparseable, impossible = parse_datetime(raw, not_after, zone)
        return parsed, [("unparseable_date", unparseable), ("impossible_date", impossible)]
    if col.slate_type == "int":
        parsed, bad = parse_int(raw)
        return parsed, [("invalid_int", bad)]
    if col.slate_type == "real":
        parsed, bad = parse_real(raw)
        return parsed, [("invalid_real", bad)]
    if col.slate_type == "bit":
        parsed, bad = parse_bit(raw)
        return parsed, [("invalid_bit", bad)]
    if col.slate_type == "varchar":
        return clean_varchar(raw), []
    raise ValueError(f"column {col.name!r} has an unsupported Slate type {col.slate_type!r}")


def validate(
    query: QuerySpec, raw: pd.DataFrame, not_after: pd.Timestamp | None = None, timezone: str = UTC_NAME
) -> ValidationResult:
    """Validate a query's raw answer against its schema and split it into typed valid rows and quarantined rows.

    Args:
        query: the query's contract (columns, Slate types, required).
        raw: the answer as strings (NaN/None/NA or "" = NULL), as ``SlateClient.fetch_all`` returns it.
        not_after: latest plausible datetime, naive UTC (the extract window's end); None checks only the year range.
        timezone: the instance's IANA zone (``Settings.slate_timezone``): naive stamps are its wall time.
    Returns:
        ValidationResult; each raw row is in exactly one of ``valid`` and ``quarantined``, with the reason of its
        first failure (columns in contract order, then the kind check). Datetimes are naive UTC.
    Raises:
        ValueError: the contract names an unsupported Slate type. TimeZoneError: unknown zone name.
    """
    raw = raw.reset_index(drop=True)
    n = len(raw)
    extra = {c: int(raw[c].notna().sum()) for c in raw.columns if c not in query.column_names}
    reason = np.full(n, None, dtype=object)
    where = np.full(n, None, dtype=object)

    def flag(mask: pd.Series | np.ndarray, why: str, column: str) -> None:
        m = np.asarray(mask, dtype=bool) & (reason == None)  # noqa: E711 (elementwise test on an object array)
        reason[m] = why
        where[m] = column

    typed: dict[str, pd.Series] = {}
    for col in query.columns:
        values = raw[col.name] if col.name in raw.columns else pd.Series([None] * n, dtype="string")
        parsed, failures = _parse_column(col, values, not_after, timezone)
        if col.required:
            flag(_blank_to_na(values).isna().to_numpy(), f"missing_{col.name}", col.name)
        for why, mask in failures:
            flag(mask.to_numpy(), why, col.name)
        typed[col.name] = parsed.astype(PANDAS_DTYPES[col.slate_type])

    if query.name == INTERACTIONS.name:
        kind = typed["kind"].str.lower()
        known = kind.isin(list(INTERACTION_KINDS)).fillna(False).to_numpy(dtype=bool)
        flag(kind.notna().to_numpy() & ~known, "unknown_kind", "kind")
        typed["kind"] = kind

    bad = reason != None  # noqa: E711
    valid = pd.DataFrame(typed).loc[~bad]
    keep_raw = [c for c in raw.columns if not (c in query.column_names and query.column(c).personal)]
    quarantined = raw.loc[bad, keep_raw].astype("string")
    quarantined["reason"] = pd.Series(reason[bad], index=quarantined.index, dtype="string")
    quarantined["column"] = pd.Series(where[bad], index=quarantined.index, dtype="string")
    counts = quarantined["reason"].value_counts().sort_index()
    return ValidationResult(
        query=query.name,
        valid=valid,
        quarantined=quarantined.reset_index(drop=True),
        counts_by_reason={str(k): int(v) for k, v in counts.items()},
        extra_columns=extra,
        rows_in=n,
    )


def check_quarantine_share(
    result: ValidationResult, max_share: float, query: QuerySpec | str, quarantine_path: Path | None = None
) -> None:
    """Fail when the quarantined share of a query's rows is above ``max_share``.

    Args:
        result: the validation result.
        max_share: the bound (``Settings.quarantine_max_share``, default 0.02).
        query: the query (or its name) for the message.
        quarantine_path: where the quarantined rows were written, for the message.
    Raises:
        QuarantineLimitError: share > max_share; the message gives the share, the count, the top reasons, the
            quarantine file and what to do.
    """
    name = query if isinstance(query, str) else query.name
    share = result.quarantined_share
    if share <= max_share:
        return
    top = sorted(result.counts_by_reason.items(), key=lambda kv: (-kv[1], kv[0]))[:5]
    reasons = ", ".join(f"{why}: {count}" for why, count in top)
    where = f" The quarantined rows, with the reason per row, are in {quarantine_path}." if quarantine_path else ""
    raise QuarantineLimitError(
        f"query {name!r}: {len(result.quarantined)} of {result.rows_in} rows ({share:.2%}) were quarantined, above "
        f"the bound of {max_share:.2%}. Top reasons: {reasons}.{where} Nothing was stored for this interval. Fix "
        "the records or the query in Slate (or, if the rows are expected, raise LEADSCORE_QUARANTINE_MAX_SHARE or "
        "the DAG param quarantine_max_share) and re-run the interval."
    )
