"""Real-world dirt the sandbox puts into its wire tables: named kinds at configurable rates, each counted.

Every function here is pure given the seeded generator: it takes the clean values and returns dirty replacements for
the chosen rows only, so the generator can count exactly what it changed.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

# Impossible date strings as seen in exports from misconfigured fields (no valid timestamp parses from them).
IMPOSSIBLE_DATES: tuple[str, ...] = ("0000-00-00", "2099-01-01T00:00:00")  # plus generated "YYYY-02-30T10:00:00"
ALT_DATE_FORMAT = "%m/%d/%Y %H:%M"  # "MM/DD/YYYY HH:MM", e.g. from a record imported from a spreadsheet
UNKNOWN_KINDS: tuple[str, ...] = ("sms_sent", "chatbot_session", "portal_login")
# Label variants a careless import produces for a normalized source label.
SOURCE_ALIASES: dict[str, tuple[str, ...]] = {"Ad-Hoc Data Load": ("Ad Hoc Data Load", "ad-hoc data load ")}


@dataclass(frozen=True)
class WireDirt:
    """Shares of served rows whose values the web service writes in another format seen in real answers.

    Applied when a page is served (not stored; the same row always gets the same variant), and never changing what
    a value means, so a client that reads every format validates the same rows as from a clean answer:
    offset_datetimes (``...Z`` or the instance's ``+hh:mm``/``-hh:mm``), fractional_seconds (``.0`` to
    ``.0000000``), upper_guids (GUIDs in upper case), braced_guids (non-key GUIDs in ``{braces}``), json_numbers
    (``ref`` as a JSON number), json_booleans (an unexpected bit column ``emailable`` as JSON ``true``/``false``),
    null_values (the row's NULL columns present as ``null`` or ``""``, as with "Include NULL Values").
    """

    offset_datetimes: float = 0.02
    fractional_seconds: float = 0.02
    upper_guids: float = 0.02
    braced_guids: float = 0.02
    json_numbers: float = 0.02
    json_booleans: float = 0.01
    null_values: float = 0.02

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= float(value) < 1.0:
                raise ValueError(f"WireDirt.{f.name} must be a share in [0, 1), got {value!r}")

    @classmethod
    def none(cls) -> WireDirt:
        """Every wire variant off: values exactly as stored (strings, NULLs omitted)."""
        return cls(**{f.name: 0.0 for f in fields(cls)})

    @property
    def any(self) -> bool:
        return any(getattr(self, f.name) > 0 for f in fields(self))


@dataclass(frozen=True)
class DirtRates:
    """Share of rows that receive each named kind of dirt (0 turns a kind off). Counts land in meta.json.

    Leads rows: duplicate_rows (exact copies, same GUID), source_label_variants (case/whitespace/alias variants of
    origin_source), missing_origin_date (NULL), impossible_dates (origin_date such as "2021-02-30T10:00:00",
    "0000-00-00", "2099-01-01T00:00:00"), alt_date_format (origin_date and application_created as
    "MM/DD/YYYY HH:MM"), odd_numeric_strings (ref as " 00123", "1,234" or "1234.0"), test_tagged (tags "test").
    extra_columns adds unexpected columns (legacy_source_code, nickname) to the leads table.
    Interactions rows: interaction_duplicates, interaction_bad_dates (occurred NULL or impossible),
    unknown_kinds (a kind outside INTERACTION_KINDS).
    wire: the WireDirt the web service applies when it serves this sandbox (recorded in meta.json, not counted).
    """

    duplicate_rows: float = 0.01
    source_label_variants: float = 0.05
    missing_origin_date: float = 0.002
    impossible_dates: float = 0.002
    alt_date_format: float = 0.01
    odd_numeric_strings: float = 0.02
    test_tagged: float = 0.005
    extra_columns: bool = True
    interaction_duplicates: float = 0.002
    interaction_bad_dates: float = 0.0005
    unknown_kinds: float = 0.0002
    wire: WireDirt = field(default_factory=WireDirt)

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name == "wire":
                if not isinstance(value, WireDirt):
                    raise ValueError(f"DirtRates.wire must be a WireDirt, got {value!r}")
                continue
            if f.name == "extra_columns":
                if not isinstance(value, bool):
                    raise ValueError(f"DirtRates.extra_columns must be a bool, got {value!r}")
                continue
            if not isinstance(value, (int, float)) or not 0.0 <= float(value) < 1.0:
                raise ValueError(f"DirtRates.{f.name} must be a share in [0, 1), got {value!r}")

    @classmethod
    def none(cls) -> DirtRates:
        """A configuration with every kind of dirt turned off (clean wire tables)."""
        values = {f.name: (False if f.name == "extra_columns" else 0.0) for f in fields(cls) if f.name != "wire"}
        return cls(**values, wire=WireDirt.none())

    def as_dict(self) -> dict[str, float | bool]:
        """The rates as a plain dict (for meta.json)."""
        return asdict(self)


def pick(rng: np.random.Generator, n: int, rate: float, exclude: np.ndarray | None = None) -> np.ndarray:
    """Indices of rows chosen independently with probability ``rate`` (sorted), optionally skipping ``exclude``."""
    chosen = rng.random(n) < rate
    if exclude is not None:
        chosen[exclude] = False
    return np.flatnonzero(chosen)


def replace_rows(values: pa.Array, rows: np.ndarray, replacement: pa.Array | list[str | None]) -> pa.Array:
    """A copy of ``values`` whose ``rows`` (sorted indices) are replaced by ``replacement`` (same length as rows)."""
    if rows.size == 0:
        return values
    mask = np.zeros(len(values), dtype=bool)
    mask[rows] = True
    return pc.replace_with_mask(values, pa.array(mask), pa.array(replacement, type=values.type))


def source_label_variants(rng: np.random.Generator, labels: list[str]) -> list[str]:
    """Case, whitespace or alias variants of normalized source labels (each differs from its input)."""
    kinds = rng.integers(0, 4, size=len(labels))
    out: list[str] = []
    for label, kind in zip(labels, kinds, strict=True):
        if kind == 0 and label in SOURCE_ALIASES:
            variant = SOURCE_ALIASES[label][int(rng.integers(len(SOURCE_ALIASES[label])))]
        elif kind == 1:
            variant = label.upper()
        elif kind == 2:
            variant = f"  {label.lower()} "
        else:
            variant = f"{label} "
        out.append(variant if variant != label else f" {label}")
    return out


def impossible_date_strings(rng: np.random.Generator, k: int, years: np.ndarray) -> list[str]:
    """``k`` date strings that name no real moment: Feb 30 of the given years, zero dates, or far-future dates."""
    kinds = rng.integers(0, 3, size=k)
    return [
        f"{int(y):04d}-02-30T10:00:00" if kind == 0 else IMPOSSIBLE_DATES[int(kind) - 1]
        for y, kind in zip(years, kinds, strict=True)
    ]


def alt_format(timestamps_us: np.ndarray) -> pa.Array:
    """Timestamps (int64 microseconds, NaT as int64 min) formatted as "MM/DD/YYYY HH:MM" (NULL for NaT)."""
    arr = pa.array(timestamps_us.astype("datetime64[us]"), type=pa.timestamp("us"))
    return pc.strftime(arr, format=ALT_DATE_FORMAT)


def odd_numeric_strings(rng: np.random.Generator, values: np.ndarray) -> list[str]:
    """Integers written the ways spreadsheets and exports mangle them: " 00123", "1,234", "1234.0"."""
    kinds = rng.integers(0, 3, size=values.size)
    fmt = (" 00{:d}", "{:,d}", "{:d}.0")
    return [fmt[int(kind)].format(int(v)) for v, kind in zip(values, kinds, strict=True)]
