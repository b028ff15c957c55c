"""Try the model on a flat export: one row per lead, a 0/1 outcome column, any mix of numeric and text columns.

``fit_table`` lets the classifier candidates (``flat_candidates``: L2 logistic regression, histogram gradient
boosting, LightGBM with native categoricals and a small grid tuned on the latest rows, and the blend of the three)
compete by log loss, on a time split when a time column is given (the latest 25 % of rows judge) and by stratified
5-fold CV otherwise, then refits the winner (every member, for the blend) on every row and saves it with its metrics to a model directory. ``score_table`` writes the id
and the probability of every input row. These are the logic of ``python -m leadscore table fit|score``.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pandas as pd
from sklearn.base import clone
from sklearn.model_selection import StratifiedKFold, cross_val_predict

from leadscore.model.evaluate import metrics as score_metrics
from leadscore.model.flat_candidates import BLEND, Blend, blend_probability, candidates

log = logging.getLogger(__name__)

MODEL_FILE = "model.joblib"
METRICS_FILE = "metrics.json"
PROBABILITY_COLUMN = "probability"
TRUE_VALUES = {"1", "true", "yes", "y", "t"}
FALSE_VALUES = {"0", "false", "no", "n", "f"}
NUMERIC_SHARE = 0.95  # a text column whose non-empty values parse as numbers at least this often is numeric


class FlatTableError(ValueError):
    """The flat table cannot be used as given (missing column, non-binary target, unreadable format)."""


def read_table(path: Path) -> pd.DataFrame:
    """Read a CSV or Parquet file (by suffix).

    Raises:
        FlatTableError: unknown suffix or missing file.
    """
    path = Path(path)
    if not path.exists():
        raise FlatTableError(f"input file {path} does not exist")
    if path.suffix.lower() in {".parquet", ".pq"}:
        return pd.read_parquet(path)
    if path.suffix.lower() in {".csv", ".txt"}:
        return pd.read_csv(path, low_memory=False)
    raise FlatTableError(f"{path}: use a .csv or .parquet file (got suffix {path.suffix!r})")


def write_table(frame: pd.DataFrame, path: Path) -> None:
    """Write CSV or Parquet (by suffix), creating the parent directory."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix.lower() in {".parquet", ".pq"}:
        frame.to_parquet(path, index=False)
    else:
        frame.to_csv(path, index=False)


def binary_target(series: pd.Series, name: str) -> pd.Series:
    """The outcome as 0/1 floats (NaN where empty). Accepts 0/1, booleans and yes/no/true/false strings.

    Raises:
        FlatTableError: any other value (the first few are named).
    """
    text = series.astype("string").str.strip().str.lower()
    text = text.str.replace(r"\.0$", "", regex=True)
    out = pd.Series(np.nan, index=series.index)
    out[text.isin(TRUE_VALUES).fillna(False).to_numpy(dtype=bool)] = 1.0
    out[text.isin(FALSE_VALUES).fillna(False).to_numpy(dtype=bool)] = 0.0
    bad = text.notna() & (text != "") & out.isna()
    if bad.any():
        raise FlatTableError(
            f"target column {name!r} must be 0/1 (or yes/no, true/false); {int(bad.sum())} rows hold "
            f"other values, e.g. {sorted(set(series[bad].astype(str)))[:5]}"
        )
    return out


def column_kinds(frame: pd.DataFrame) -> tuple[list[str], list[str], list[str]]:
    """Split feature columns into numeric, text and dropped (all empty, or identifier-like text: unique on more
    than half of the rows)."""
    numeric, text, dropped = [], [], []
    n = len(frame)
    for col in frame.columns:
        s = frame[col]
        if s.notna().sum() == 0:
            dropped.append(col)
        elif pd.api.types.is_bool_dtype(s.dtype) or pd.api.types.is_numeric_dtype(s.dtype):
            numeric.append(col)
        else:
            parsed = pd.to_numeric(s.astype("string").str.strip(), errors="coerce")
            if parsed.notna().sum() >= NUMERIC_SHARE * s.notna().sum():
                numeric.append(col)
            elif s.nunique() > max(50, n // 2):
                dropped.append(col)
            else:
                text.append(col)
    return numeric, text, dropped


def _prepare(frame: pd.DataFrame, numeric: list[str], text: list[str]) -> pd.DataFrame:
    out = pd.DataFrame(index=frame.index)
    for col in numeric:
        out[col] = pd.to_numeric(frame[col].astype("string").str.strip(), errors="coerce").astype("float64")
    for col in text:
        out[col] = frame[col].astype("string").str.strip().astype(object).where(frame[col].notna(), "(missing)")
    return out


def fit_table(
    input_path: Path,
    target: str,
    id_col: str | None,
    time_col: str | None,
    drop: list[str] | tuple[str, ...],
    model_dir: Path,
) -> dict[str, Any]:
    """Fit and compare the classifier candidates on a flat table; save the winner and the metrics.

    Args:
        input_path: CSV or Parquet. target: the 0/1 outcome column. id_col: excluded from features.
        time_col: when given, rows are ordered by it and the latest 25 % are the holdout; else stratified 5-fold CV.
        drop: more columns to ignore (e.g. leaking ones). model_dir: where model.joblib and metrics.json go.
    Returns:
        The metrics dict (also saved): per candidate holdout/CV metrics, the chosen candidate, columns used.
    Raises:
        FlatTableError: missing columns, a non-binary target, or too few rows of a class.
    """
    started = time.perf_counter()
    frame = read_table(Path(input_path))
    named = [c for c in [target, id_col, time_col, *drop] if c]
    missing = [c for c in named if c not in frame.columns]
    if missing:
        raise FlatTableError(f"{input_path}: columns {missing} not found; the file has {list(frame.columns)}")
    y_all = binary_target(frame[target], target)
    keep = y_all.notna().to_numpy()
    frame, y = frame[keep].reset_index(drop=True), y_all[keep].to_numpy(dtype=float)
    counts = np.bincount(y.astype(int), minlength=2)
    if counts.min() < 10:
        raise FlatTableError(
            f"target {target!r} needs at least 10 rows of each outcome; got {counts[0]} zeros and "
            f"{counts[1]} ones (of {len(y)} labelled rows)"
        )
    features = frame.drop(columns=named)
    numeric, text, dropped = column_kinds(features)
    if not numeric and not text:
        raise FlatTableError(f"{input_path}: no usable feature columns (dropped {dropped})")
    x = _prepare(features, numeric, text)
    unfitted = candidates(numeric, text)
    predictions: dict[str, np.ndarray] = {}
    if time_col:
        t = pd.to_datetime(frame[time_col], errors="coerce")
        if t.isna().any():
            raise FlatTableError(f"time column {time_col!r}: {int(t.isna().sum())} rows are empty or not dates")
        # In time order: the boosting challenger early-stops on the latest rows it is given.
        order = np.argsort(t.to_numpy(), kind="stable")
        cut = int(len(order) * 0.75)
        fit_idx, judged = order[:cut], order[cut:]
        for name, pipe in unfitted.items():
            predictions[name] = clone(pipe).fit(x.iloc[fit_idx], y[fit_idx]).predict_proba(x.iloc[judged])[:, 1]
        validation = f"time split on {time_col}: latest {len(judged)} of {len(order)} rows"
    else:
        # Without a time the file's order means nothing (it may be sorted by outcome or by id): shuffle it once,
        # so that the slice the boosting challenger early-stops on is a random one.
        order = judged = np.random.default_rng(0).permutation(len(y))
        cv = StratifiedKFold(n_splits=5, shuffle=True, random_state=0)
        for name, pipe in unfitted.items():
            predictions[name] = cross_val_predict(clone(pipe), x.iloc[order], y[order], cv=cv, method="predict_proba")[
                :, 1
            ]
        validation = "stratified 5-fold cross-validation"
    predictions[BLEND] = blend_probability(list(predictions.values()))
    results = {name: score_metrics(y[judged], p) for name, p in predictions.items()}
    chosen = min(results, key=lambda k: results[k]["log_loss"])
    members = unfitted if chosen == BLEND else {chosen: unfitted[chosen]}
    fitted = {name: clone(pipe).fit(x.iloc[order], y[order]) for name, pipe in members.items()}
    final = Blend(fitted) if chosen == BLEND else fitted[chosen]
    model_dir = Path(model_dir)
    model_dir.mkdir(parents=True, exist_ok=True)
    joblib.dump({"pipeline": final, "numeric": numeric, "text": text, "target": target}, model_dir / MODEL_FILE)
    summary = {
        "input": str(input_path),
        "target": target,
        "rows": len(frame),
        "rows_without_target": int((~keep).sum()),
        "positives": int(counts[1]),
        "validation": validation,
        "chosen": chosen,
        "candidates": results,
        "numeric_columns": numeric,
        "text_columns": text,
        "dropped_columns": dropped,
        "fit_seconds": round(time.perf_counter() - started, 2),
    }
    (model_dir / METRICS_FILE).write_text(json.dumps(summary, indent=2, default=float))
    log.info("flat table: chose %s (%s)", chosen, {k: round(v["log_loss"], 5) for k, v in results.items()})
    return summary


def score_table(model_dir: Path, input_path: Path, id_col: str, output: Path) -> int:
    """Score every row of a flat table with a model saved by ``fit_table``; write ``id_col`` and ``probability``.

    Returns:
        The number of rows written.
    Raises:
        FlatTableError: no model in ``model_dir``, or the input lacks the id or a feature column.
    """
    path = Path(model_dir) / MODEL_FILE
    if not path.exists():
        raise FlatTableError(f"no {MODEL_FILE} in {model_dir}; run `table fit` first")
    saved = joblib.load(path)
    frame = read_table(Path(input_path))
    needed = [id_col, *saved["numeric"], *saved["text"]]
    missing = [c for c in needed if c not in frame.columns]
    if missing:
        raise FlatTableError(f"{input_path}: columns {missing} needed by the model are missing")
    x = _prepare(frame, saved["numeric"], saved["text"])
    p = saved["pipeline"].predict_proba(x)[:, 1]
    write_table(pd.DataFrame({id_col: frame[id_col].to_numpy(), PROBABILITY_COLUMN: np.round(p, 6)}), Path(output))
    return len(frame)
