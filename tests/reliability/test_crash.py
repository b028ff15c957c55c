"""Promises 1 and 2 under a real crash: a `python -m leadscore` process is killed (SIGKILL) at a named kill point.

The kill points are hooks in the product (``leadscore.faults.point``), armed by ``LEADSCORE_KILL_POINT``: no
monkeypatching, the process dies where a power cut would stop it. After each kill the next run must recover: nothing
partial is used or left behind, and Slate's importer (polled between the runs, as Slate polls on its own) imports
each chunk exactly once.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from leadscore.data.store import ExtractStore
from leadscore.scoring.files import read_manifest
from leadscore.slate.ledger import DeliveryLedger
from tests.reliability.procs import WEEK1_END, WEEK2_END, cli_env, killed_at, run, week_args

IMPORT_DIR = "incoming/lead_scores"
PROCESSED_DIR = "incoming/processed"
WEEK2 = (pd.Timestamp(WEEK1_END), pd.Timestamp(WEEK2_END))


def test_files_of_cli_runs_under_umask_022_are_owner_only(cli_home: Any) -> None:
    # The processes started with umask 022: only the product's own umask and modes make these 0600/0700.
    files = [p for p in cli_home.home.rglob("*") if p.is_file()]
    assert any("mlflow" in p.parts for p in files) and any(p.suffix == ".parquet" for p in files)
    assert cli_home.loose_modes == [], "\n".join(cli_home.loose_modes[:20])


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def leftovers(home: Path) -> list[str]:
    """Temp files, spill files and commit journals anywhere under the home (a recovered run leaves none)."""
    return sorted(str(p.relative_to(home)) for p in home.rglob(".*") if p.is_file() and "mlflow" not in p.parts)


def week2_files(home: Path) -> dict[str, bytes]:
    """The week's extracts and quarantine files, by path relative to the home."""
    store = ExtractStore(home / "extracts")
    paths = [store.path(q, *WEEK2) for q in ("leads", "interactions")]
    paths += [store.quarantine_path(q, *WEEK2) for q in ("leads", "interactions")]
    return {str(p.relative_to(home)): p.read_bytes() for p in paths if p.exists()}


def comparable_summary(home: Path) -> dict:
    summary = json.loads(ExtractStore(home / "extracts").summary_path(*WEEK2).read_text())
    drop = {"seconds", "fetch_seconds", "extract_path", "quarantine_path", "summary_path"}

    def strip(obj: Any) -> Any:
        return {k: strip(v) for k, v in obj.items() if k not in drop} if isinstance(obj, dict) else obj

    return strip(summary)


# -- mid-extract commit -------------------------------------------------------------------------------------------


def test_kill_between_the_replaces_of_an_extract_commit_never_leaves_a_mixed_interval(
    cli_home: Any, sandbox: Any, tmp_path: Path
) -> None:
    home = cli_home.copy(tmp_path / "home")
    reference, reference_summary = week2_files(cli_home.home), comparable_summary(cli_home.home)
    assert len(reference) == 4
    for rel in reference:  # the week was never extracted in this copy
        (home / rel).unlink()
    ExtractStore(home / "extracts").summary_path(*WEEK2).unlink()
    env = cli_env(home, sandbox)

    killed_at("extract.commit.between_replaces", week_args("extract"), env, tmp_path / "killed.log")
    on_disk = {rel for rel in reference if (home / rel).exists()}
    assert 0 < len(on_disk) < len(reference)  # the kill really fell between two moves of the commit
    # The next process that opens the store completes the commit before reading anything.
    store = ExtractStore(home / "extracts")
    assert (pd.Timestamp(WEEK1_END), pd.Timestamp(WEEK2_END)) in store.intervals("leads")
    assert week2_files(home) == reference and comparable_summary(home) == reference_summary
    assert leftovers(home) == []

    run(week_args("extract"), env, tmp_path / "rerun.log")  # and a re-run of the week gives the same bytes
    assert week2_files(home) == reference and leftovers(home) == []


# -- delivery -----------------------------------------------------------------------------------------------------


def remote(sandbox: Any, folder: str) -> list[str]:
    return sorted(p.name for p in (sandbox.paths.sftp_root / folder).iterdir())


def poll(sandbox: Any) -> list[str]:
    imported = [r.file for r in sandbox.importer.poll()]
    assert not any(not name.endswith(".csv") for name in imported), imported  # never a .part
    return imported


def assert_each_chunk_imported_once(sandbox: Any, home: Path) -> None:
    """Slate's import log holds each chunk of the manifest once, with the manifest's bytes; one ledger line each."""
    manifest = read_manifest(home / "scores" / WEEK2_END.strftime("%Y%m%d"))
    names = [f.name for f in manifest.files]
    assert len(names) >= 3
    assert sorted(e["file"] for e in sandbox.importer.log()) == names  # each exactly once
    assert remote(sandbox, IMPORT_DIR) == [] and remote(sandbox, PROCESSED_DIR) == names
    for f in manifest.files:
        assert sha(sandbox.paths.sftp_root / PROCESSED_DIR / f.name) == f.sha256
    entries = DeliveryLedger(home / "ledger").entries(manifest.scored_on)
    assert sorted(e.file for e in entries) == names and all(
        e.sha256 == f.sha256 for e, f in zip(sorted(entries, key=lambda e: e.file), manifest.files, strict=True)
    )


def delivered(output: str) -> dict:
    return json.loads(output.strip().splitlines()[-1])


def test_kill_after_upload_before_rename_leaves_only_a_part_that_the_next_run_replaces(
    cli_home: Any, sandbox: Any, tmp_path: Path
) -> None:
    home = cli_home.copy(tmp_path / "home")
    env = cli_env(home, sandbox)
    killed_at("deliver.after_upload:2", week_args("deliver"), env, tmp_path / "killed.log")
    assert remote(sandbox, IMPORT_DIR) == ["lead_scores_20261123_1_of_5.csv", "lead_scores_20261123_2_of_5.csv.part"]
    assert poll(sandbox) == ["lead_scores_20261123_1_of_5.csv"]  # Slate polls meanwhile: never the .part
    report = delivered(run(week_args("deliver"), env, tmp_path / "rerun.log"))
    assert (
        report["skipped"] == 1 and report["sent"] == 4 and report["removed"] == ["lead_scores_20261123_2_of_5.csv.part"]
    )
    poll(sandbox)
    assert_each_chunk_imported_once(sandbox, home)


@pytest.mark.parametrize("slate_polls_between", [True, False], ids=["imported-meanwhile", "not-yet-imported"])
def test_kill_after_rename_before_the_ledger_line_does_not_send_the_chunk_again(
    cli_home: Any, sandbox: Any, tmp_path: Path, slate_polls_between: bool
) -> None:
    home = cli_home.copy(tmp_path / "home")
    env = cli_env(home, sandbox)
    killed_at("deliver.after_rename:2", week_args("deliver"), env, tmp_path / "killed.log")
    assert len(DeliveryLedger(home / "ledger").entries()) == 1  # chunk 2 is renamed but not recorded
    if slate_polls_between:
        assert poll(sandbox) == ["lead_scores_20261123_1_of_5.csv", "lead_scores_20261123_2_of_5.csv"]
    report = delivered(run(week_args("deliver"), env, tmp_path / "rerun.log"))
    # Chunk 2 is found on the server with its SHA-256 (processed, or still under its final name) and recorded.
    assert report["recovered"] == ["lead_scores_20261123_2_of_5.csv"]
    assert report["skipped"] == 1 and report["sent"] == 3
    poll(sandbox)
    assert_each_chunk_imported_once(sandbox, home)


# -- mid-report write ---------------------------------------------------------------------------------------------


def test_kill_mid_report_write_keeps_the_previous_report_whole(cli_home: Any, sandbox: Any, tmp_path: Path) -> None:
    home = cli_home.copy(tmp_path / "home")
    report = home / "reports" / f"weekly_{WEEK2_END:%Y%m%d}.html"
    before = report.read_bytes()
    assert before.rstrip().endswith(b"</html>")
    env = cli_env(home, sandbox)
    killed_at("report.write.mid", week_args("score"), env, tmp_path / "killed.log")  # after its delivery
    assert report.read_bytes() == before  # the half-written report is only a temp file
    partial = [p for p in report.parent.iterdir() if p.name.startswith(f".{report.name}.")]
    assert len(partial) == 1 and not partial[0].read_bytes().rstrip().endswith(b"</html>")
    poll(sandbox)
    assert_each_chunk_imported_once(sandbox, home)

    run(week_args("score"), env, tmp_path / "rerun.log")
    after = report.read_bytes()
    assert after.rstrip().endswith(b"</html>") and b"2026-11-23" in after
    assert leftovers(home) == []  # the killed writer's temp was removed by the next write of the report
    assert poll(sandbox) == []  # same scores, already in the ledger: nothing sent twice
    assert_each_chunk_imported_once(sandbox, home)
