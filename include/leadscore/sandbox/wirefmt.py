"""Fast fixed-width string columns for the sandbox's wire tables (timestamps, UUIDs), built as Arrow buffers.

Arrow's ``strftime`` and Python-level formatting take tens of seconds for the tens of millions of interaction rows a
1,000,000-lead sandbox has; writing the ASCII bytes with numpy takes well under a second.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

_INT32_MAX = 2**31 - 1
_HEX = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)


def fixed_width_array(chars: np.ndarray, valid: np.ndarray | None = None) -> pa.Array:
    """An Arrow string array from an (n, width) uint8 matrix of ASCII bytes; rows where ``valid`` is False are NULL."""
    n, width = chars.shape
    large = n * width > _INT32_MAX
    offsets = np.arange(n + 1, dtype=np.int64 if large else np.int32) * width
    bitmap = None
    null_count = 0
    if valid is not None and not valid.all():
        bitmap = pa.py_buffer(np.packbits(valid, bitorder="little"))
        null_count = int(n - valid.sum())
    arr_type = pa.large_string() if large else pa.string()
    return pa.Array.from_buffers(
        arr_type,
        n,
        [bitmap, pa.py_buffer(offsets), pa.py_buffer(np.ascontiguousarray(chars).reshape(-1))],
        null_count=null_count,
    )


def _civil(us: np.ndarray) -> tuple[np.ndarray, ...]:
    """(year, month, day, hour, minute, second) of int64 microseconds since the epoch (proleptic Gregorian, UTC)."""
    secs = us // 1_000_000
    days = secs // 86_400
    sod = secs - days * 86_400
    # civil_from_days (H. Hinnant), exact for all int64 day counts we use
    z = days + 719_468
    era = z // 146_097
    doe = z - era * 146_097
    yoe = (doe - doe // 1_460 + doe // 36_524 - doe // 146_096) // 365
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    day = doy - (153 * mp + 2) // 5 + 1
    month = np.where(mp < 10, mp + 3, mp - 9)
    year = yoe + era * 400 + (month <= 2)
    return year, month, day, sod // 3_600, (sod // 60) % 60, sod % 60


_PAIRS = np.array([[48 + i // 10, 48 + i % 10] for i in range(100)], dtype=np.uint8)


def _put(chars: np.ndarray, start: int, digits: int, values: np.ndarray) -> None:
    """Write zero-padded decimal ``values`` (non-negative, < 10**digits; digits even) at columns start.."""
    v = values.astype(np.int32)
    for i in range(0, digits, 2):
        end = start + digits - i
        chars[:, end - 2 : end] = _PAIRS[(v // 10**i) % 100]


def _valid_and_clean(us: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    us = np.asarray(us)
    if us.dtype.kind == "M":
        valid = ~np.isnat(us)
        raw = us.astype("datetime64[us]").view(np.int64)
    else:
        raw = us.astype(np.int64)
        valid = raw != np.iinfo(np.int64).min
    return np.where(valid, raw, 0), valid


def iso_seconds(us: np.ndarray) -> pa.Array:
    """Timestamps (datetime64 or int64 microseconds) as "YYYY-MM-DDTHH:MM:SS" strings; NaT becomes NULL."""
    raw, valid = _valid_and_clean(us)
    y, mo, d, h, mi, s = _civil(raw)
    chars = np.empty((raw.size, 19), dtype=np.uint8)
    chars[:, [4, 7]] = ord("-")
    chars[:, 10] = ord("T")
    chars[:, [13, 16]] = ord(":")
    for start, digits, values in ((0, 4, y), (5, 2, mo), (8, 2, d), (11, 2, h), (14, 2, mi), (17, 2, s)):
        _put(chars, start, digits, values)
    return fixed_width_array(chars, valid)


def us_date_minutes(us: np.ndarray) -> pa.Array:
    """Timestamps as "MM/DD/YYYY HH:MM" strings (the alternate export format); NaT becomes NULL."""
    raw, valid = _valid_and_clean(us)
    y, mo, d, h, mi, _ = _civil(raw)
    chars = np.empty((raw.size, 16), dtype=np.uint8)
    chars[:, [2, 5]] = ord("/")
    chars[:, 10] = ord(" ")
    chars[:, 13] = ord(":")
    for start, digits, values in ((0, 2, mo), (3, 2, d), (6, 4, y), (11, 2, h), (14, 2, mi)):
        _put(chars, start, digits, values)
    return fixed_width_array(chars, valid)


def uuid4_array(rng: np.random.Generator, n: int) -> pa.Array:
    """``n`` lower-case RFC 4122 version-4 UUID strings drawn from the seeded generator (never ``uuid.uuid4()``)."""
    raw = np.frombuffer(rng.bytes(16 * n), dtype=np.uint8).reshape(n, 16).copy()
    raw[:, 6] = (raw[:, 6] & 0x0F) | 0x40
    raw[:, 8] = (raw[:, 8] & 0x3F) | 0x80
    hexchars = np.empty((n, 32), dtype=np.uint8)
    hexchars[:, 0::2] = _HEX[raw >> 4]
    hexchars[:, 1::2] = _HEX[raw & 0x0F]
    chars = np.full((n, 36), ord("-"), dtype=np.uint8)
    for dst, src in ((0, 0), (9, 8), (14, 12), (19, 16), (24, 20)):
        width = 8 if dst == 0 else (12 if dst == 24 else 4)
        chars[:, dst : dst + width] = hexchars[:, src : src + width]
    return fixed_width_array(chars)
