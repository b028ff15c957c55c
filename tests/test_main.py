"""`python -m leadscore`: the product's own errors reach the user as one line, never a traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_a_product_error_is_one_line_on_stderr_without_a_traceback(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LEADSCORE_")}
    env.update(PYTHONPATH=str(ROOT / "include"), LEADSCORE_HOME=str(tmp_path / "home"))
    # Training on an empty home: NoExtractError, LeadScore's own error with its own advice.
    done = subprocess.run(
        [sys.executable, "-m", "leadscore", "train"], env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr
    assert done.stderr.strip().splitlines()[-1].startswith("error: NoExtractError: ")
    assert "run lead_data" in done.stderr
