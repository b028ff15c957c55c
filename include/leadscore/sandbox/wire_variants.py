"""Serve-time value formats seen in real Slate answers (``dirt.WireDirt``), applied to one page before rendering.

Rows are chosen by a hash of their key and the variant, so a page served twice is the same answer and duplicate
records of one key get the same variant. Each variant writes the same value in another form:

- offset_datetimes: ``2026-03-01T14:00:00Z`` (the moment in UTC) or ``2026-03-01T09:00:00-05:00`` (wall time and
  the zone's offset at that moment; in the repeated hour, the first occurrence's, as a naive reading gives);
- fractional_seconds: 1 to 7 zero digits, ``...:00.0`` to ``...:00.0000000`` (the generator's times are whole
  seconds);
- upper_guids / braced_guids: every GUID of the row in upper case / the row's non-key GUIDs in ``{braces}`` (keys
  stay bare: a cursor is sent back as it was received);
- json_numbers: ``ref`` as a JSON number when it is a plain integer string;
- json_booleans: an unexpected extra bit column ``emailable`` with JSON ``true``/``false``;
- null_values: the row's NULL columns present, half as ``null``, half as ``""`` ("Include NULL Values").
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from leadscore.sandbox.dirt import WireDirt
from leadscore.slate.queries import LEADS, QuerySpec
from leadscore.slate.wall_time import UTC_NAME, wall_to_utc

BOOLEAN_EXTRA_COLUMN = "emailable"
_ISO_SECONDS = r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d$"
_PLAIN_INT = r"^(0|[1-9]\d{0,14})$"
_M64 = np.uint64(0xFFFFFFFFFFFFFFFF)
_SALTS = {name: i + 1 for i, name in enumerate(("offset", "zulu", "fraction", "digits", "upper", "braces"))}
_SALTS.update({"number": 7, "boolean": 8, "boolean_value": 9, "null": 10, "null_kind": 11})


def _key_hashes(keys: pa.Array) -> np.ndarray:
    """A 64-bit FNV-1a hash of each key's lower-case text (vectorized over the page)."""
    text = pc.utf8_lower(keys.cast(pa.large_string()))
    raw = np.array(text.to_pylist(), dtype="S64")
    chars = raw.view(np.uint8).reshape(len(raw), -1)
    h = np.full(len(raw), np.uint64(0xCBF29CE484222325))
    with np.errstate(over="ignore"):
        for j in range(chars.shape[1]):
            h = (h ^ chars[:, j].astype(np.uint64)) * np.uint64(0x100000001B3)
    return h


def _uniform(hashes: np.ndarray, salt: str) -> np.ndarray:
    """Independent uniform draws in [0, 1) per key and salt (splitmix64 finaliser)."""
    with np.errstate(over="ignore"):
        z = (hashes + np.uint64(_SALTS[salt]) * np.uint64(0x9E3779B97F4A7C15)) & _M64
        z = ((z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)) & _M64
        z = ((z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)) & _M64
        z = z ^ (z >> np.uint64(31))
    return (z >> np.uint64(11)).astype(np.float64) / float(1 << 53)


def _replace(values: pa.Array, mask: np.ndarray, new: list[str]) -> pa.Array:
    if not mask.any():
        return values
    return pc.replace_with_mask(values, pa.array(mask), pa.array(new, type=values.type))


def _datetime_variants(values: pa.Array, offset: np.ndarray, zulu: np.ndarray, digits: np.ndarray, zone: str):
    """The values with offsets (where ``offset``) and ``digits`` zero fraction digits (where > 0)."""
    canonical = np.asarray(pc.fill_null(pc.match_substring_regex(values, _ISO_SECONDS), False))
    chosen = canonical & (offset | (digits > 0))
    if not chosen.any():
        return values
    text = values.filter(pa.array(chosen)).to_pylist()
    wall = np.array(text, dtype="datetime64[us]")
    utc = wall_to_utc(wall, zone)
    out = []
    for i, stamp, w, u in zip(np.flatnonzero(chosen), text, wall, utc, strict=True):
        fraction = "." + "0" * int(digits[i]) if digits[i] > 0 else ""
        if not offset[i]:
            out.append(stamp + fraction)
        elif zulu[i] or zone == UTC_NAME:
            out.append(pd.Timestamp(u).strftime("%Y-%m-%dT%H:%M:%S") + fraction + "Z")
        else:
            minutes = int((w - u) // np.timedelta64(1, "m"))
            sign = "-" if minutes < 0 else "+"
            out.append(f"{stamp}{fraction}{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}")
    return _replace(values, chosen, out)


def apply_wire_dirt(
    spec: QuerySpec, columns: list[str], values: list[pa.Array], wire: WireDirt, zone: str = UTC_NAME
) -> tuple[list[str], list[pa.Array], dict[str, np.ndarray]]:
    """One page's columns and values in the variants of ``wire``.

    Args:
        spec: the query. columns, values: the page as served (one large_string array per column; NULL = omitted).
        wire: the shares of each variant. zone: the instance's zone (for offsets).
    Returns:
        (columns, values, literal): ``literal[col]`` marks the cells written as raw JSON (number, boolean, null)
        rather than as a JSON string; NULL cells in ``values`` are still omitted.
    """
    if not wire.any or not values or len(values[0]) == 0:
        return columns, values, {}
    columns, values = list(columns), list(values)
    n = len(values[0])
    hashes = _key_hashes(values[columns.index(spec.key)])

    def chosen(salt: str, rate: float) -> np.ndarray:
        return _uniform(hashes, salt) < rate

    literal: dict[str, np.ndarray] = {}
    types = {c.name: c.slate_type for c in spec.columns}
    types["updated"] = "datetime"
    offset, zulu = chosen("offset", wire.offset_datetimes), chosen("zulu", 0.5)
    digits = np.where(chosen("fraction", wire.fractional_seconds), 1 + (_uniform(hashes, "digits") * 7).astype(int), 0)
    upper, braces = chosen("upper", wire.upper_guids), chosen("braces", wire.braced_guids)
    numbers = chosen("number", wire.json_numbers)
    for j, name in enumerate(columns):
        kind, arr = types.get(name), values[j]
        if kind == "datetime":
            arr = _datetime_variants(arr, offset, zulu, digits, zone)
        elif kind == "uniqueidentifier":
            present = ~np.asarray(pc.is_null(arr))
            if upper.any():
                arr = pc.if_else(pa.array(upper & present), pc.utf8_upper(arr), arr)
            if name != spec.key and braces.any():
                braced = pc.binary_join_element_wise(_large("{"), arr, _large("}"), _large(""))
                arr = pc.if_else(pa.array(braces & present), braced, arr)
        elif kind == "int" and numbers.any():
            plain = np.asarray(pc.fill_null(pc.match_substring_regex(arr, _PLAIN_INT), False))
            literal[name] = numbers & plain
        values[j] = arr
    if wire.null_values > 0:
        nulls, as_null = chosen("null", wire.null_values), chosen("null_kind", 0.5)
        for j, name in enumerate(columns):
            if name not in types:
                continue
            fill = nulls & np.asarray(pc.is_null(values[j]))
            if fill.any():
                values[j] = _replace(values[j], fill, ["null" if as_null[i] else "" for i in np.flatnonzero(fill)])
                literal[name] = literal.get(name, np.zeros(n, dtype=bool)) | (fill & as_null)
    booleans = chosen("boolean", wire.json_booleans)
    if spec.name == LEADS.name and booleans.any():
        flags = np.where(_uniform(hashes, "boolean_value") < 0.5, "true", "false")
        columns.append(BOOLEAN_EXTRA_COLUMN)
        values.append(pa.array(np.where(booleans, flags, None).tolist(), type=pa.large_string()))
        literal[BOOLEAN_EXTRA_COLUMN] = booleans
    return columns, values, literal


def _large(text: str) -> pa.Scalar:
    return pa.scalar(text, type=pa.large_string())
