"""`table fit` / `table score` logic on flat CSV and Parquet exports."""

from __future__ import annotations

import json

import joblib
import numpy as np
import pandas as pd
import pytest
from scipy.special import expit
from sklearn.base import BaseEstimator, ClassifierMixin

from leadscore.model import flat_table
from leadscore.model.flat_candidates import BLEND, Blend, blend_probability
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
    assert summary["chosen"] in {"logistic", "hgb", "lgbm", BLEND} and "time split" in summary["validation"]
    assert set(summary["candidates"]) == {"logistic", "hgb", "lgbm", BLEND}
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


def test_fit_with_cross_validation_on_parquet_sorted_by_outcome(tmp_path):
    # Sorted by outcome, the last quarter of each fold is all converters: without a time column the rows are
    # shuffled first, so the boosting challenger's early-stopping slice holds both outcomes.
    src = tmp_path / "export.parquet"
    _export(seed=1).drop(columns=["created"]).sort_values("applied").to_parquet(src, index=False)
    summary = fit_table(src, "applied", "guid", None, ["leak"], tmp_path / "m")
    assert "5-fold" in summary["validation"] and summary["rows"] == 1500
    assert summary["candidates"]["lgbm"]["auc"] > 0.7


class _Noisy(ClassifierMixin, BaseEstimator):
    """A stand-in candidate that needs no fitting: P(1) = expit(signal + its own noise column)."""

    def __init__(self, noise: str = "a") -> None:
        self.noise = noise

    def fit(self, x: pd.DataFrame, y: np.ndarray) -> _Noisy:
        self.classes_ = np.array([0.0, 1.0])
        return self

    def predict_proba(self, x: pd.DataFrame) -> np.ndarray:
        p = expit(x["signal"].to_numpy() + x[self.noise].to_numpy())
        return np.column_stack([1 - p, p])

    def predict(self, x: pd.DataFrame) -> np.ndarray:
        return (self.predict_proba(x)[:, 1] >= 0.5).astype(float)


def test_the_blend_wins_when_the_candidates_errors_are_independent_and_is_saved_whole(tmp_path, monkeypatch):
    rng = np.random.default_rng(3)
    n = 2000
    signal = rng.normal(0, 1.5, n)
    data = pd.DataFrame({"id": np.arange(n), "signal": signal, "a": rng.normal(0, 1.5, n), "b": rng.normal(0, 1.5, n)})
    data["y"] = (rng.uniform(size=n) < expit(signal)).astype(int)
    src = tmp_path / "export.csv"
    data.to_csv(src, index=False)
    monkeypatch.setattr(flat_table, "candidates", lambda numeric, text: {"one": _Noisy("a"), "two": _Noisy("b")})
    summary = fit_table(src, "y", "id", None, [], tmp_path / "m")
    assert summary["chosen"] == BLEND
    assert summary["candidates"][BLEND]["log_loss"] < min(summary["candidates"][k]["log_loss"] for k in ("one", "two"))
    assert isinstance(joblib.load(tmp_path / "m" / "model.joblib")["pipeline"], Blend)
    score_table(tmp_path / "m", src, "id", tmp_path / "s.csv")
    expected = expit(data["signal"] + (data["a"] + data["b"]) / 2)
    assert np.allclose(read_table(tmp_path / "s.csv")["probability"], expected, atol=1e-5)


def test_blend_probability_is_the_logistic_of_the_mean_log_odds():
    assert np.allclose(blend_probability([np.array([0.2, 0.9]), np.array([0.2, 0.9])]), [0.2, 0.9])
    assert np.allclose(blend_probability([np.array([0.1]), np.array([0.9])]), [0.5])
    assert np.allclose(blend_probability([np.array([expit(1.0)]), np.array([expit(3.0)])]), [expit(2.0)])
    edge = blend_probability([np.array([0.0, 1.0]), np.array([0.5, 0.5])])
    assert np.isfinite(edge).all() and 0 < edge[0] < 0.5 < edge[1] < 1
    with pytest.raises(ValueError, match="at least one member"):
        blend_probability([])


def test_clear_errors(tmp_path):
    src = tmp_path / "export.csv"
    _export().assign(applied="maybe").to_csv(src, index=False)
    with pytest.raises(FlatTableError, match="must be 0/1"):
        fit_table(src, "applied", "guid", None, [], tmp_path / "m")
    with pytest.raises(FlatTableError, match="nope"):
        fit_table(src, "nope", "guid", None, [], tmp_path / "m")
    with pytest.raises(FlatTableError, match="run `table fit` first"):
        score_table(tmp_path / "empty", src, "guid", tmp_path / "o.csv")
