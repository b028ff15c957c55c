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
    """A ``large_string`` Arrow array (what pandas' ``str`` dtype holds, so no copy on conversion) from an (n, width)
    uint8 matrix of ASCII bytes; rows where ``valid`` is False are NULL."""
    n, width = chars.shape
    offsets = np.arange(n + 1, dtype=np.int64) * width
    bitmap = None
    null_count = 0
    if valid is not None and not valid.all():
        bitmap = pa.py_buffer(np.packbits(valid, bitorder="little"))
        null_count = int(n - valid.sum())
    return pa.Array.from_buffers(
        pa.large_string(),
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
    v = values.astype(np.int64)
    for i in range(0, digits, 2):
        end = start + digits - i
        chars[:, end - 2 : end] = _PAIRS[(v // 10**i) % 100]


def _render(pattern: str, us: np.ndarray) -> np.ndarray:
    """ASCII bytes (n, len) of ``pattern`` with YYYY MM DD hh mm ss filled from int64 microseconds (small n)."""
    y, mo, d, h, mi, s = _civil(us)
    chars = np.frombuffer(pattern.encode("ascii"), dtype=np.uint8)[None, :].repeat(us.size, axis=0)
    for token, digits, values in (
        ("YYYY", 4, y),
        ("MM", 2, mo),
        ("DD", 2, d),
        ("hh", 2, h),
        ("mm", 2, mi),
        ("ss", 2, s),
    ):
        at = pattern.find(token)
        if at >= 0:
            _put(chars, at, digits, values)
    return chars


def _format(us: np.ndarray, date_pattern: str, time_pattern: str, time_step_s: int) -> pa.Array:
    """Timestamps formatted as date_pattern + time_pattern, by lookup: the dates of a sandbox span a few thousand
    days and the times of day at most 86,400 values, so each part is rendered once per distinct value."""
    us = np.asarray(us)
    if us.dtype.kind == "M":
        valid = ~np.isnat(us)
        raw = us.astype("datetime64[us]").view(np.int64)
    else:
        raw = us.astype(np.int64)
        valid = raw != np.iinfo(np.int64).min
    raw = np.where(valid, raw, 0)
    secs = raw // 1_000_000
    days = secs // 86_400
    first = int(days.min()) if days.size else 0
    day_idx = days - first
    n_days = int(day_idx.max()) + 1 if days.size else 0
    day_table = _render(date_pattern, (first + np.arange(n_days, dtype=np.int64)) * 86_400_000_000)
    steps = 86_400 // time_step_s
    time_table = _render(time_pattern, np.arange(steps, dtype=np.int64) * time_step_s * 1_000_000)
    width_d, width_t = len(date_pattern), len(time_pattern)
    # gather whole rows as opaque items (one copy per row, not per byte)
    rows = np.empty(raw.size, dtype=np.dtype([("d", f"V{width_d}"), ("t", f"V{width_t}")]))
    rows["d"] = day_table.view(f"V{width_d}").ravel()[day_idx]
    rows["t"] = time_table.view(f"V{width_t}").ravel()[(secs - days * 86_400) // time_step_s]
    return fixed_width_array(rows.view(np.uint8).reshape(raw.size, width_d + width_t), valid)


def iso_seconds(us: np.ndarray) -> pa.Array:
    """Timestamps (datetime64 or int64 microseconds, int64 min = NaT) as "YYYY-MM-DDTHH:MM:SS"; NaT becomes NULL."""
    return _format(us, "YYYY-MM-DDT", "hh:mm:ss", 1)


def us_date_minutes(us: np.ndarray) -> pa.Array:
    """Timestamps as "MM/DD/YYYY HH:MM" strings (the alternate export format); NaT becomes NULL."""
    return _format(us, "MM/DD/YYYY ", "hh:mm", 60)


# Two random bytes (a little-endian uint16) -> their four hex characters as one little-endian uint32.
_HEX4 = np.frombuffer(
    b"".join(f"{v & 0xFF:02x}{v >> 8:02x}".encode("ascii") for v in range(65_536)), dtype="<u4"
).copy()
_VARIANT = np.frombuffer(b"89ab", dtype=np.uint8)
_CHUNK = 1 << 20


def uuid4_chars(rng: np.random.Generator, n: int) -> np.ndarray:
    """``n`` lower-case RFC 4122 version-4 UUIDs as an (n, 36) ASCII matrix, from the seeded generator."""
    chars = np.full((n, 36), ord("-"), dtype=np.uint8)
    for lo in range(0, n, _CHUNK):  # chunks keep the index temporaries small
        hi = min(n, lo + _CHUNK)
        raw = np.frombuffer(rng.bytes(16 * (hi - lo)), dtype="<u2").reshape(hi - lo, 8)
        hexes = _HEX4[raw].view(np.uint8)  # (rows, 32)
        block = chars[lo:hi]
        for dst, src, width in ((0, 0, 8), (9, 8, 4), (14, 12, 4), (19, 16, 4), (24, 20, 12)):
            block[:, dst : dst + width] = hexes[:, src : src + width]
        block[:, 14] = ord("4")  # version nibble
        block[:, 19] = _VARIANT[raw[:, 4] & 0x3]  # variant bits 10xx
    return chars


def uuid4_array(rng: np.random.Generator, n: int) -> pa.Array:
    """``n`` lower-case RFC 4122 version-4 UUID strings drawn from the seeded generator (never ``uuid.uuid4()``)."""
    return fixed_width_array(uuid4_chars(rng, n))
