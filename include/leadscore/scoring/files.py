"""The score files of BRIEF §6: chunked CSVs plus a manifest, one folder per scoring date.

Layout under ``out_dir`` (normally ``Settings.scores_dir``)::

    <YYYYMMDD>/lead_scores_<YYYYMMDD>_<part>_of_<n>.csv   the chunks Slate imports (part is 1-based, not padded)
    <YYYYMMDD>/manifest.json                              files, rows, bytes, sha256, scored_on, model_version
    <YYYYMMDD>/scores.parquet                             every scored lead incl. control leads (for monitoring)

CSV dialect: UTF-8 without BOM, comma, ``"`` quoting only where needed (``csv.QUOTE_MINIMAL``), CRLF line ends
(RFC 4180), a header row in every chunk, rows sorted by ``person_guid``. When the week has control leads (the
control share is above 0), the files gain a last column ``control`` (0/1) and control rows carry an empty score,
tier, probability and reasons, so Slate shows them as unscored; ``scores.parquet`` keeps their real scores for
measuring lift. With ``Settings.contact_flag`` on, the files carry ``contact_this_week`` (1/0: the week's best
contact list within the counselors' capacity, ``scoring.outreach``) before ``control``; control rows leave it empty.
With no control leads and the flag off the columns are exactly the contract's.

A date's folder is built beside the old one and swapped in whole, so a re-run never leaves chunks of an earlier run
with more parts, and identical input gives byte-identical CSVs and manifest.
"""

from __future__ import annotations

import csv
import hashlib
import json
import re
import shutil
import uuid
from dataclasses import asdict, dataclass, field
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd

from leadscore.scoring.errors import ScoreFileError
from leadscore.scoring.score import REASON_COLUMNS
from leadscore.scoring.tiers import guid_order

FILE_PREFIX = "lead_scores_"
MANIFEST_NAME = "manifest.json"
SCORES_NAME = "scores.parquet"
LINE_END = "\r\n"
_BLOCK_ROWS = 20_000
_P_COLUMN = re.compile(r"^p_apply_\d+d$")
_NAME = re.compile(r"^lead_scores_(\d{8})_(\d+)_of_(\d+)\.csv$")


def date_key(scored_on: date) -> str:
    """``YYYYMMDD`` of a scoring date (the key of its file names and folder)."""
    return scored_on.strftime("%Y%m%d")


def chunk_name(scored_on: date, part: int, parts: int) -> str:
    """The file name of one chunk, e.g. ``lead_scores_20240107_2_of_3.csv``."""
    return f"{FILE_PREFIX}{date_key(scored_on)}_{part}_of_{parts}.csv"


def parse_chunk_name(name: str) -> tuple[str, int, int] | None:
    """``(YYYYMMDD, part, parts)`` of a chunk file name, or ``None`` when the name is not a chunk's."""
    m = _NAME.match(name)
    return (m.group(1), int(m.group(2)), int(m.group(3))) if m else None


@dataclass(frozen=True)
class ScoreFile:
    """One chunk: its name, data rows (header excluded), size in bytes and SHA-256 (hex)."""

    name: str
    rows: int
    bytes: int
    sha256: str


@dataclass(frozen=True)
class Manifest:
    """What was written for one scoring date.

    Attributes:
        scored_on: ISO date of the scores (the interval's end).
        model_version: the model version in every row.
        columns: the CSV header.
        rows: data rows over all chunks (control leads included, shown as unscored).
        bytes: bytes over all chunks.
        control_rows: leads flagged control (in the CSVs with an empty score and tier).
        files: the chunks, in part order.
        directory: the folder holding the chunks (not serialized).
    """

    scored_on: str
    model_version: str
    columns: tuple[str, ...]
    rows: int
    bytes: int
    control_rows: int
    files: tuple[ScoreFile, ...]
    directory: Path = field(compare=False)

    @property
    def scored_on_date(self) -> date:
        return date.fromisoformat(self.scored_on)

    def path(self, name: str) -> Path:
        """Local path of a chunk."""
        return self.directory / name

    def to_json(self) -> str:
        """The manifest as stable JSON (sorted keys, no timestamps), ending in a newline."""
        data = asdict(self)
        data.pop("directory")
        data["columns"] = list(self.columns)
        return json.dumps(data, indent=2, sort_keys=True) + "\n"


class _Lines:
    """A write target for ``csv.writer`` that keeps each row's text (the C writer calls write once per row)."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.write = self.lines.append


def _csv_lines(rows: object) -> list[str]:
    """CSV text of each row (an iterable of string sequences) in the file dialect."""
    sink = _Lines()
    csv.writer(sink, quoting=csv.QUOTE_MINIMAL, lineterminator=LINE_END).writerows(rows)  # type: ignore[arg-type]
    return sink.lines


CONTACT_COLUMN = "contact_this_week"
_INT_COLUMNS = ("lead_score", CONTACT_COLUMN, "control")
_BLANK_FOR_CONTROL = ("lead_score", "lead_tier", *REASON_COLUMNS, CONTACT_COLUMN)


def _as_text(columns: dict[str, np.ndarray], rows: np.ndarray, control: np.ndarray | None = None) -> list[list[str]]:
    """The given rows of every file column as Python strings (4 decimals for p, "" for missing).

    Control rows (``control[rows] == 1``) get "" for the score, tier, probability and reasons.
    Plain lists, not a DataFrame: pandas would turn them back into Arrow strings, which iterate ten times slower.
    """
    blank = control[rows].astype(bool) if control is not None else None
    out: list[list[str]] = []
    for col, values in columns.items():
        picked = values[rows]
        if _P_COLUMN.match(col):
            text = [f"{v:.4f}" for v in picked]
        elif col in _INT_COLUMNS:
            text = [str(v) for v in picked]
        else:
            text = picked.tolist()
        if blank is not None and blank.any() and (col in _BLANK_FOR_CONTROL or _P_COLUMN.match(col)):
            text = ["" if b else t for t, b in zip(text, blank, strict=True)]
        out.append(text)
    return out


def _column_values(scores: pd.DataFrame, columns: list[str]) -> dict[str, np.ndarray]:
    out: dict[str, np.ndarray] = {}
    for col in columns:
        if _P_COLUMN.match(col):
            out[col] = scores[col].to_numpy(dtype="float64")
        elif col in _INT_COLUMNS:
            out[col] = scores[col].to_numpy(dtype="int64")
        else:
            out[col] = scores[col].astype("string").fillna("").to_numpy(dtype=object)
    return out


def file_columns(scores: pd.DataFrame) -> list[str]:
    """The score-file columns of a scores frame, in contract order.

    Raises:
        ScoreFileError: no or several ``p_apply_<H>d`` columns, or a contract column is missing.
    """
    p_cols = [c for c in scores.columns if _P_COLUMN.match(str(c))]
    if len(p_cols) != 1:
        raise ScoreFileError(f"scores need exactly one p_apply_<H>d column, found {p_cols}")
    columns = ["person_guid", "lead_score", "lead_tier", p_cols[0], *REASON_COLUMNS, "model_version", "scored_on"]
    missing = [c for c in columns if c not in scores.columns]
    if missing:
        raise ScoreFileError(f"scores lack the score-file columns {missing}")
    return columns


def _check_scores(scores: pd.DataFrame, scored_on: date) -> str:
    if len(scores) == 0:
        raise ScoreFileError("no scored leads: refusing to write an empty score file set")
    guids = scores["person_guid"]
    if guids.isna().any() or guids.duplicated().any():
        raise ScoreFileError(
            f"person_guid must be present and unique: {int(guids.isna().sum())} missing, "
            f"{int(guids.duplicated().sum())} repeated"
        )
    days = set(scores["scored_on"].astype(str).unique())
    if days != {scored_on.isoformat()}:
        raise ScoreFileError(f"scores carry scored_on {sorted(days)} but the files are for {scored_on.isoformat()}")
    versions = scores["model_version"].astype(str).unique()
    if len(versions) != 1:
        raise ScoreFileError(f"scores come from several model versions {sorted(versions)}; expected one")
    return str(versions[0])


class _ChunkWriter:
    """Streams rows into numbered temporary chunk files under the row and byte caps."""

    def __init__(self, directory: Path, header: bytes, chunk_rows: int, chunk_bytes: int) -> None:
        self.directory = directory
        self.header = header
        self.chunk_rows = chunk_rows
        self.budget = chunk_bytes - len(header)
        self.done: list[tuple[Path, int, int, str]] = []
        self._fh = None
        self._hash = None
        self._rows = 0
        self._bytes = 0

    def _open(self) -> None:
        path = self.directory / f"chunk_{len(self.done) + 1:06d}.tmp"
        self._fh = path.open("wb")
        self._hash = hashlib.sha256(self.header)
        self._fh.write(self.header)
        self._rows, self._bytes = 0, 0

    def _close(self) -> None:
        assert self._fh is not None and self._hash is not None
        self._fh.close()
        self.done.append((Path(self._fh.name), self._rows, self._bytes + len(self.header), self._hash.hexdigest()))
        self._fh = None

    def add(self, lines: list[bytes]) -> None:
        sizes = np.fromiter((len(b) for b in lines), dtype="int64", count=len(lines))
        if sizes.size and sizes.max() > self.budget:
            raise ScoreFileError(
                f"a score row of {int(sizes.max())} bytes does not fit the byte cap of {self.budget + len(self.header)}"
                " bytes per file (header included); raise LEADSCORE_CHUNK_BYTES"
            )
        i = 0
        while i < len(lines):
            if self._fh is None:
                self._open()
            room_rows = self.chunk_rows - self._rows
            fits = np.searchsorted(np.cumsum(sizes[i : i + room_rows]), self.budget - self._bytes, side="right")
            take = int(min(room_rows, fits))
            if take:
                assert self._fh is not None and self._hash is not None
                data = b"".join(lines[i : i + take])
                self._fh.write(data)
                self._hash.update(data)
                self._rows += take
                self._bytes += len(data)
                i += take
            if take == 0 or self._rows == self.chunk_rows:
                self._close()

    def finish(self) -> list[tuple[Path, int, int, str]]:
        if self._fh is not None:
            self._close()
        return self.done


def write_score_files(
    scores: pd.DataFrame, out_dir: Path, scored_on: date, chunk_rows: int, chunk_bytes: int
) -> Manifest:
    """Write one scoring date's score files and manifest, replacing that date's folder whole.

    Args:
        scores: output of ``score_leads`` (the score-file columns, optionally ``contact_this_week`` and ``control``).
        out_dir: the scores root (``Settings.scores_dir``); the files go to ``out_dir/<YYYYMMDD>/``.
        scored_on: the scoring date; must equal every row's ``scored_on``.
        chunk_rows: maximum data rows per file.
        chunk_bytes: maximum bytes per file, header included.
    Returns:
        The :class:`Manifest` (also written as ``manifest.json`` beside the chunks).
    Raises:
        ScoreFileError: empty or inconsistent scores, bad caps, or a single row larger than the byte cap.
    """
    if chunk_rows <= 0 or chunk_bytes <= 0:
        raise ScoreFileError(f"chunk_rows and chunk_bytes must be positive, got {chunk_rows} and {chunk_bytes}")
    columns = file_columns(scores)
    model_version = _check_scores(scores, scored_on)
    control = (
        scores["control"].to_numpy(dtype="int64") if "control" in scores.columns else np.zeros(len(scores), "int64")
    )
    if control.all():
        raise ScoreFileError(f"all {len(scores)} scored leads are control leads: nothing to score in Slate")
    has_control = bool(control.any())
    if CONTACT_COLUMN in scores.columns:
        columns = [*columns, CONTACT_COLUMN]
    if has_control:
        columns = [*columns, "control"]
    values = _column_values(scores, columns)
    order = guid_order(values["person_guid"])

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    key = date_key(scored_on)
    final = out_dir / key
    for leftover in out_dir.glob(f".{key}.*"):  # a crashed earlier run's staging folder
        shutil.rmtree(leftover, ignore_errors=True)
    staging = out_dir / f".{key}.tmp-{uuid.uuid4().hex}"
    staging.mkdir()
    try:
        header = _csv_lines([columns])[0].encode("utf-8")
        writer = _ChunkWriter(staging, header, chunk_rows, chunk_bytes)
        for start in range(0, len(order), _BLOCK_ROWS):
            block = _as_text(values, order[start : start + _BLOCK_ROWS], control if has_control else None)
            writer.add([line.encode("utf-8") for line in _csv_lines(zip(*block, strict=True))])
        chunks = writer.finish()
        files = []
        for part, (path, rows, size, digest) in enumerate(chunks, start=1):
            name = chunk_name(scored_on, part, len(chunks))
            path.rename(staging / name)
            files.append(ScoreFile(name=name, rows=rows, bytes=size, sha256=digest))
        manifest = Manifest(
            scored_on=scored_on.isoformat(),
            model_version=model_version,
            columns=tuple(columns),
            rows=sum(f.rows for f in files),
            bytes=sum(f.bytes for f in files),
            control_rows=int(control.sum()),
            files=tuple(files),
            directory=final,
        )
        (staging / MANIFEST_NAME).write_text(manifest.to_json(), encoding="utf-8")
        scores.to_parquet(staging / SCORES_NAME, index=False)
        _swap_in(staging, final, out_dir, key)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return manifest


def _swap_in(staging: Path, final: Path, out_dir: Path, key: str) -> None:
    """Replace ``final`` by ``staging`` (two renames; the old folder is removed after the swap)."""
    old = None
    if final.exists():
        old = out_dir / f".{key}.old-{uuid.uuid4().hex}"
        final.rename(old)
    staging.rename(final)
    if old is not None:
        shutil.rmtree(old)


def read_manifest(path: Path) -> Manifest:
    """Read a manifest from its file or from its date folder.

    Raises:
        ScoreFileError: the file is missing or does not hold a manifest.
    """
    path = Path(path)
    file = path / MANIFEST_NAME if path.is_dir() else path
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
        return Manifest(
            scored_on=data["scored_on"],
            model_version=data["model_version"],
            columns=tuple(data["columns"]),
            rows=int(data["rows"]),
            bytes=int(data["bytes"]),
            control_rows=int(data["control_rows"]),
            files=tuple(ScoreFile(**f) for f in data["files"]),
            directory=file.parent,
        )
    except FileNotFoundError as exc:
        raise ScoreFileError(f"no score manifest at {file}; write the score files first") from exc
    except (KeyError, TypeError, ValueError) as exc:
        raise ScoreFileError(f"{file} is not a valid score manifest: {exc}") from exc


def read_scores(manifest: Manifest) -> pd.DataFrame:
    """Every scored lead of a manifest's date (control leads included), from ``scores.parquet``.

    Raises:
        ScoreFileError: the parquet file is missing.
    """
    path = manifest.directory / SCORES_NAME
    if not path.exists():
        raise ScoreFileError(f"{path} is missing; re-run the scoring of {manifest.scored_on}")
    return pd.read_parquet(path)


def previous_manifest(out_dir: Path, scored_on: date) -> Manifest | None:
    """The manifest of the latest scoring date strictly before ``scored_on``, or ``None`` when there is none."""
    out_dir = Path(out_dir)
    if not out_dir.exists():
        return None
    key = date_key(scored_on)
    earlier = sorted(
        p.name for p in out_dir.iterdir() if p.is_dir() and re.fullmatch(r"\d{8}", p.name) and p.name < key
    )
    for name in reversed(earlier):
        if (out_dir / name / MANIFEST_NAME).exists():
            return read_manifest(out_dir / name)
    return None
