"""The one seam of the ground truth: the ceiling only for extracts that came from the sandbox."""

from __future__ import annotations

import ast
from pathlib import Path

import pandas as pd

from leadscore.sandbox.config import load_or_create_credentials
from leadscore.settings import Settings
from leadscore.tasks.ceiling import sandbox_truth, store_is_sandbox

PACKAGE = Path(__file__).resolve().parents[2] / "include" / "leadscore"


def test_truth_only_when_the_store_source_is_this_sandbox(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path / "home")
    creds = load_or_create_credentials(settings.sandbox_dir)
    pd.DataFrame({"person_guid": ["a"]}).to_parquet(settings.sandbox_dir / "truth.parquet")
    ids = {name: q.id for name, q in creds.queries.items()}
    sandbox = {"host": "127.0.0.1", "queries": ids}
    assert store_is_sandbox(settings, sandbox)
    assert sandbox_truth(settings, sandbox) is not None
    # Real extracts in a home where a sandbox was generated before (the credentials file exists): no ceiling.
    real = {"host": "x.technolutions.net", "queries": {"leads": "0" * 32, "interactions": ids["interactions"]}}
    assert not store_is_sandbox(settings, real) and sandbox_truth(settings, real) is None
    assert sandbox_truth(settings, None) is None
    assert sandbox_truth(Settings(home=tmp_path / "other"), sandbox) is None  # no sandbox there


def test_core_packages_never_import_the_sandbox() -> None:
    for layer in ("data", "model", "scoring", "monitoring"):
        for path in (PACKAGE / layer).glob("*.py"):
            for node in ast.walk(ast.parse(path.read_text())):
                names = (
                    [a.name for a in node.names]
                    if isinstance(node, ast.Import)
                    else [node.module or ""]
                    if isinstance(node, ast.ImportFrom)
                    else []
                )
                assert not any(n.startswith("leadscore.sandbox") for n in names), f"{path} imports {names}"
