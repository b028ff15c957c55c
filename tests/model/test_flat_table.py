"""`table fit` / `table score` logic on flat CSV and Parquet exports."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from leadscore.model.flat_table import METRICS_FILE, FlatTableError, fit_table, read_table, score_table


def _export(n: int = 1500, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    source = rng.choice(["Inquiry Form", "Vendor Lead", "Source"], size=n, p=[0.2, 0.3, 0.5])
    opens = rng.poisson(2, n).astype(float)
    opens[rng.uniform(size=n) < 0.1] = np.nan
    eta = -3 + 2.0 * (source == "Inquiry Form") + 0.4 * np.nan_to_num(opens)
    applied = np.where(rng.uniform(size=n) < 1 / (1 + np.exp(-eta)), "Yes", "No")
    return pd.DataFrame(
        {
            "guid": [f"g{i:05d}" for i in range(n)],
            "created": pd.Timestamp("2023-01-01") + pd.to_timedelta(rng.integers(0, 700, n), unit="D"),
            "source": source,
            "email_opens": opens,
            "state": rng.choice(["NY", "CA", None], size=n),
            "zip_as_text": [str(v) for v in rng.integers(10000, 99999, n)],
            "leak": applied,
            "applied": applied,
        }
    )


def test_fit_with_time_split_and_score_round_trip(tmp_path):
    data = _export()
    src = tmp_path / "export.csv"
    data.to_csv(src, index=False)
    summary = fit_table(src, "applied", "guid", "created", ["leak"], tmp_path / "model")
    assert summary["chosen"] in {"logistic", "hgb", "lgbm"} and "time split" in summary["validation"]
    assert summary["candidates"]["lgbm"]["auc"] > 0.7
    assert summary["candidates"]["logistic"]["auc"] > 0.7
    assert "guid" not in summary["numeric_columns"] + summary["text_columns"]
    assert "leak" not in summary["text_columns"] and "zip_as_text" in summary["numeric_columns"]
    assert json.loads((tmp_path / "model" / METRICS_FILE).read_text())["chosen"] == summary["chosen"]
    out = tmp_path / "scores.parquet"
    rows = score_table(tmp_path / "model", src, "guid", out)
    scored = read_table(out)
    assert rows == len(data) == len(scored)
    assert list(scored.columns) == ["guid", "probability"] and scored["probability"].between(0, 1).all()


def test_fit_with_cross_validation_on_parquet(tmp_path):
    src = tmp_path / "export.parquet"
    _export(seed=1).drop(columns=["created"]).to_parquet(src, index=False)
    summary = fit_table(src, "applied", "guid", None, ["leak"], tmp_path / "m")
    assert "5-fold" in summary["validation"] and summary["rows"] == 1500


def test_clear_errors(tmp_path):
    src = tmp_path / "export.csv"
    _export().assign(applied="maybe").to_csv(src, index=False)
    with pytest.raises(FlatTableError, match="must be 0/1"):
        fit_table(src, "applied", "guid", None, [], tmp_path / "m")
    with pytest.raises(FlatTableError, match="nope"):
        fit_table(src, "nope", "guid", None, [], tmp_path / "m")
    with pytest.raises(FlatTableError, match="run `table fit` first"):
        score_table(tmp_path / "empty", src, "guid", tmp_path / "o.csv")
