"""Pure tests of the score files: chunking by rows and bytes, names, CSV dialect, manifest, re-runs."""

from __future__ import annotations

import csv
import hashlib
from datetime import date
from pathlib import Path

import pandas as pd
import pytest

from leadscore.scoring.errors import ScoreFileError
from leadscore.scoring.files import (
    chunk_name,
    previous_manifest,
    read_manifest,
    read_scores,
    write_score_files,
)
from leadscore.scoring.score import score_leads
from leadscore.settings import Settings
from tests.scoring.fakes import DummyModel, make_features

DAY = date(2024, 1, 7)


def scores_of(n: int, seed: int = 0, **settings: object) -> pd.DataFrame:
    return score_leads(DummyModel(), make_features(n, seed), "12", DAY, Settings().replace(**settings))


def read_rows(path: Path) -> list[list[str]]:
    with path.open(encoding="utf-8", newline="") as fh:
        return list(csv.reader(fh))


def test_chunks_by_rows_names_and_dialect(tmp_path: Path) -> None:
    scores = scores_of(2500)
    manifest = write_score_files(scores, tmp_path, DAY, chunk_rows=1000, chunk_bytes=5_000_000)
    names = [f.name for f in manifest.files]
    assert names == [f"lead_scores_20240107_{i}_of_3.csv" for i in (1, 2, 3)]
    assert [f.rows for f in manifest.files] == [1000, 1000, 500]
    assert manifest.rows == 2500 and manifest.directory == tmp_path / "20240107"
    raw = manifest.path(names[0]).read_bytes()
    assert not raw.startswith(b"\xef\xbb\xbf")
    assert raw.startswith(b"person_guid,lead_score,lead_tier,p_apply_30d,top_reason_1,")
    assert b"\r\n" in raw
    rows = [row for name in names for row in read_rows(manifest.path(name))[1:]]
    assert len(rows) == 2500
    guids = [r[0] for r in rows]
    assert guids == sorted(guids) == sorted(scores["person_guid"])
    assert all(len(r[3]) == 6 and r[3].startswith("0.") for r in rows)  # 4 decimals
    for name in names:
        assert read_rows(manifest.path(name))[0] == list(manifest.columns)


def test_quoting_of_commas_and_quotes(tmp_path: Path) -> None:
    scores = scores_of(50)
    scores.loc[0, "top_reason_1"] = 'Interested in The "Honors" College, Main'
    manifest = write_score_files(scores, tmp_path, DAY, 10_000, 5_000_000)
    text = manifest.path(manifest.files[0].name).read_text(encoding="utf-8")
    assert '"Interested in The ""Honors"" College, Main"' in text
    rows = read_rows(manifest.path(manifest.files[0].name))
    assert 'Interested in The "Honors" College, Main' in {r[4] for r in rows}


def test_chunks_by_bytes(tmp_path: Path) -> None:
    scores = scores_of(2000)
    cap = 20_000
    manifest = write_score_files(scores, tmp_path, DAY, chunk_rows=10_000, chunk_bytes=cap)
    assert len(manifest.files) > 5
    for f in manifest.files:
        size = manifest.path(f.name).stat().st_size
        assert size == f.bytes <= cap
        assert len(read_rows(manifest.path(f.name))) - 1 == f.rows
    assert sum(f.rows for f in manifest.files) == 2000
    # Greedy: every chunk but the last is too full to take the next row.
    assert all(f.bytes > cap - 300 for f in manifest.files[:-1])
    with pytest.raises(ScoreFileError, match="does not fit the byte cap"):
        write_score_files(scores, tmp_path, DAY, chunk_rows=10_000, chunk_bytes=150)


def test_manifest_sha256_and_roundtrip(tmp_path: Path) -> None:
    manifest = write_score_files(scores_of(1200), tmp_path, DAY, 500, 5_000_000)
    for f in manifest.files:
        data = manifest.path(f.name).read_bytes()
        assert hashlib.sha256(data).hexdigest() == f.sha256 and len(data) == f.bytes
    again = read_manifest(manifest.directory)
    assert again == manifest
    assert again.model_version == "12" and again.scored_on == "2024-01-07"
    assert len(read_scores(manifest)) == 1200


def test_rerun_is_byte_identical_and_replaces_stale_chunks(tmp_path: Path) -> None:
    scores = scores_of(3000)
    first = write_score_files(scores, tmp_path, DAY, 1000, 5_000_000)
    bytes_first = {p.name: p.read_bytes() for p in first.directory.iterdir() if p.suffix in (".csv", ".json")}
    # Shuffled input rows: same bytes.
    second = write_score_files(scores.sample(frac=1.0, random_state=3), tmp_path, DAY, 1000, 5_000_000)
    bytes_second = {p.name: p.read_bytes() for p in second.directory.iterdir() if p.suffix in (".csv", ".json")}
    assert bytes_first == bytes_second
    # Fewer parts on re-run: the old 3_of_3 must not survive.
    third = write_score_files(scores, tmp_path, DAY, 2000, 5_000_000)
    csvs = sorted(p.name for p in third.directory.glob("*.csv"))
    assert csvs == [chunk_name(DAY, 1, 2), chunk_name(DAY, 2, 2)]
    assert [p.name for p in tmp_path.iterdir()] == ["20240107"]  # no staging folders left


def test_control_leads_are_flagged_and_shown_unscored(tmp_path: Path) -> None:
    scores = scores_of(2000, control_share=0.2)
    manifest = write_score_files(scores, tmp_path, DAY, 10_000, 5_000_000)
    control = int(scores["control"].sum())
    assert control > 0 and manifest.control_rows == control
    assert manifest.rows == 2000 and manifest.columns[-1] == "control"
    rows = read_rows(manifest.path(manifest.files[0].name))
    header, body = rows[0], rows[1:]
    by_guid = {r[0]: dict(zip(header, r, strict=True)) for r in body}
    control_guids = set(scores.loc[scores["control"] == 1, "person_guid"])
    for guid in control_guids:
        row = by_guid[guid]
        assert row["control"] == "1" and row["lead_score"] == row["lead_tier"] == row["top_reason_1"] == ""
        assert row[next(c for c in header if c.startswith("p_apply_"))] == ""
    scored = [r for g, r in by_guid.items() if g not in control_guids]
    assert all(r["control"] == "0" and r["lead_tier"] in "ABCD" and r["lead_score"] for r in scored)


def test_no_control_column_without_control_leads(tmp_path: Path) -> None:
    manifest = write_score_files(scores_of(500), tmp_path, DAY, 10_000, 5_000_000)
    assert "control" not in manifest.columns and manifest.control_rows == 0


def test_previous_manifest_and_contract_checks(tmp_path: Path) -> None:
    assert previous_manifest(tmp_path, DAY) is None
    scores = scores_of(100)
    write_score_files(scores, tmp_path, DAY, 10_000, 5_000_000)
    later = date(2024, 1, 14)
    assert previous_manifest(tmp_path, later).scored_on == "2024-01-07"
    assert previous_manifest(tmp_path, DAY) is None
    with pytest.raises(ScoreFileError, match="scored_on"):
        write_score_files(scores, tmp_path, later, 10_000, 5_000_000)
    with pytest.raises(ScoreFileError, match="empty"):
        write_score_files(scores.head(0), tmp_path, DAY, 10_000, 5_000_000)
