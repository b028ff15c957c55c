"""Quality benchmark: the candidates' holdout AUC and log loss against the generator's true probability (the ceiling).

Per seed (default sandbox size, 20,000 leads): generate -> the sandbox's own query tables -> validate, quarantine,
clean and store through ``extract_interval`` (in-process, no HTTP: the rows and strings are what the web service would
serve; the HTTP path is measured in scale.py) -> build_landmarks + attach_truth + time_split (as of the sandbox's end)
-> train_and_evaluate. Reported per model (cox, logistic, hgb, lgbm, the ceiling), overall and by lead-age bucket, and the
median over seeds of the ratios model AUC / ceiling AUC and model log loss / ceiling log loss.

How much of the gap is information no model can observe (method): the ceiling knows each lead's latent interest z
(N(0, 1), log-hazard coefficient BETA_Z) and the exact hazard form. Two references split the gap:
  * ``ceiling_without_z``: the true probability with z integrated out over its posterior given survival to the lead's
    age (Gauss-Hermite over the N(0,1) prior, weighted by exp(-Lambda(t))), i.e. the best possible forecast from
    source, college and age alone: what the ceiling is worth without z.
  * ``hgb_oracle_z``: the same HGB challenger (same preprocessing and hyper-parameters) fitted on the features plus z.
    (hgb_oracle_z - hgb) is what observing z would add to the same learner: the unobservable part of the gap;
    (ceiling - hgb_oracle_z) is what is left for functional form, estimation noise and label noise. Observable
    features only proxy z (e-mail opens, pings and events are driven by z), so a model can close part of the gap.

The naive baseline of the original deployment (seed 000) on the same split: one row per training lead with counts
over its WHOLE history (leaking events after the landmark), fixed bins of counts one-hot encoded, lifelines Cox with
L2 penalizer 0.8, the score read off the cumulative hazard at the lead's age, 1 - exp(-H(age | x)). Evaluated twice:
``naive_as_deployed`` (holdout rows binned from their point-in-time features: what a weekly run would have) and
``naive_leaky_eval`` (holdout rows with whole-history counts: how the original evaluated itself). The score it read,
P(applied by age t), rises with age while an open lead's chance falls with age, so it ranks old leads first;
``naive_conditional`` scores the same fitted model as P(apply in (t, t+H] | open at t) to separate that error from
the leak and the coarse bins.

Also: ``anticipation`` (share of applicants leaving apply-page ping bursts before applying; the true hazard does not
use them) lets a model see applications coming, which the ceiling ignores, so a model can approach or beat the
ceiling in the youngest buckets. The full run repeats one seed with anticipation=0 to show its size.

Usage: ``python bench/quality.py [--seeds 7 8 9] [--leads 20000] [--no-anticipation-check]``.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np
import pandas as pd

from bench.common import load_average, write_result
from bench.observable_ceiling import observable_posterior, z_r_squared

MODELS = ("cox", "logistic", "hgb", "lgbm", "ceiling")
EXTRA = (
    "ceiling_observable",
    "ceiling_without_z",
    "hgb_oracle_z",
    "naive_as_deployed",
    "naive_leaky_eval",
    "naive_conditional",
)
SEGMENTS = ("all", "0-7", "8-30", "31-90", "91+")
COUNT_BINS = (-0.5, 0.5, 2.5, 5.5, 10.5, np.inf)  # 0, 1-2, 3-5, 6-10, 11+
RATE_BINS = (-0.01, 1e-9, 0.1, 0.25, 0.5, np.inf)
NAIVE_COUNTS = ("email_sent", "email_open", "email_click", "distinct_urls", "activities")
NAIVE_RATES = ("email_open_rate", "email_click_rate")


# --- data ----------------------------------------------------------------------------------------------------------


def sandbox_tables(leads: int, seed: int, anticipation: float, work: Path) -> tuple[pd.DataFrame, pd.DataFrame, Any]:
    """Generate a sandbox and run it through extract -> validate -> clean -> store; returns (leads, interactions,
    (truth, end))."""
    from bench.common import DirectClient
    from leadscore.data.extract import extract_interval
    from leadscore.data.store import ExtractStore
    from leadscore.sandbox.generator import GeneratorConfig, generate, write_sandbox
    from leadscore.settings import Settings

    data = generate(GeneratorConfig(leads=leads, seed=seed, anticipation=anticipation))
    end = pd.Timestamp(data.meta["end"])
    data_dir = work / "sandbox"
    write_sandbox(data, data_dir)
    settings = Settings().replace(home=work / "home")
    store = ExtractStore(settings.extracts_dir)
    extract_interval(DirectClient(data_dir), store, settings, end - pd.Timedelta(days=7), end, full_history=True)
    return store.read_all("leads"), store.read_all("interactions"), (data.truth, end)


# --- references that split the gap ------------------------------------------------------------------------------


def ceiling_without_z(rows: pd.DataFrame, truth: pd.DataFrame, horizon_days: int, nodes: int = 40) -> np.ndarray:
    """True probability with the latent interest z integrated out over its posterior given survival to age t.

    p = E[1 - exp(-e^(eta0 + b z) dL0) | T > t] with weights phi(z) exp(-e^(eta0 + b z) L0(t)); eta0 = eta - b z.
    """
    from leadscore.sandbox.generator import BETA_Z
    from leadscore.sandbox.truth import DAY_US, cumulative_baseline

    guids = pd.Index(rows["person_guid"].astype("str").str.lower())
    pos = pd.Index(truth["person_guid"]).get_indexer(guids)
    if (pos < 0).any():
        raise KeyError(f"{int((pos < 0).sum())} landmark rows have no truth row")
    created = truth["created"].to_numpy("datetime64[us]").view(np.int64)[pos]
    t_us = rows["as_of"].to_numpy("datetime64[us]").view(np.int64)
    s = (t_us - created) / DAY_US
    a1, tau1, a2, tau2 = (truth[c].to_numpy(np.float64)[pos] for c in ("a1", "tau1", "a2", "tau2"))
    eta0 = truth["eta"].to_numpy(np.float64)[pos] - BETA_Z * truth["z"].to_numpy(np.float64)[pos]
    lam_t = cumulative_baseline(s, a1, tau1, a2, tau2)
    d_lam = cumulative_baseline(s + horizon_days, a1, tau1, a2, tau2) - lam_t
    x, w = np.polynomial.hermite_e.hermegauss(nodes)  # probabilists' Hermite: weight exp(-z^2/2)
    num = np.zeros(len(rows))
    den = np.zeros(len(rows))
    for zk, wk in zip(x, w, strict=True):
        rate = np.exp(eta0 + BETA_Z * zk)
        surv = wk * np.exp(-rate * lam_t)
        num += surv * -np.expm1(-rate * d_lam)
        den += surv
    return num / den


def hgb_with_z(result: Any, ts: Any, truth: pd.DataFrame) -> np.ndarray:
    """Refit the HGB challenger (same preprocessing and hyper-parameters) with z as an extra feature; holdout p."""
    from sklearn.base import clone

    from leadscore.data.tables import FEATURE_COLUMNS

    impl = result.candidates["hgb"].impl
    z_of = truth.set_index("person_guid")["z"]

    def frame(rows: pd.DataFrame) -> pd.DataFrame:
        out = impl.frame(rows[list(FEATURE_COLUMNS)]).copy()
        out["z"] = z_of.reindex(rows["person_guid"].astype("str").str.lower()).to_numpy(dtype=float)
        return out

    train = ts.rows[ts.train_mask]
    train = train[train["label"].notna()]
    hold = ts.rows[ts.holdout_mask]
    hold = hold[hold["label"].notna()]
    clf = clone(impl.clf).fit(frame(train), train["label"].to_numpy(dtype=float))
    return clf.predict_proba(frame(hold))[:, 1]


# --- the naive baseline (seed 000) --------------------------------------------------------------------------------


def _naive_design(feat: pd.DataFrame, columns: list[str] | None = None) -> pd.DataFrame:
    """Fixed bins of counts and rates, one-hot (first level dropped), plus the source one-hot."""
    acts = [c for c in feat.columns if c.startswith("activity_")]
    base = feat.assign(activities=feat[acts].sum(axis=1))
    parts = []
    for c in NAIVE_COUNTS:
        parts.append(pd.cut(base[c].astype(float), COUNT_BINS, labels=["0", "1-2", "3-5", "6-10", "11+"]).rename(c))
    for c in NAIVE_RATES:
        parts.append(pd.cut(base[c].astype(float), RATE_BINS, labels=["0", "<.1", "<.25", "<.5", ">=.5"]).rename(c))
    parts.append(base["source"].astype("str").fillna("missing").rename("source"))
    x = pd.get_dummies(pd.concat(parts, axis=1).astype("str"), drop_first=False, dtype=float)
    if columns is None:
        # drop one level per variable (the first seen in sorted order) to keep the design full rank
        drop = [
            sorted(c for c in x.columns if c.startswith(v + "_"))[0] for v in (*NAIVE_COUNTS, *NAIVE_RATES, "source")
        ]
        x = x.drop(columns=drop)
        return x.loc[:, x.std() > 0]
    return x.reindex(columns=columns, fill_value=0.0)


def naive_baseline(
    ts: Any, leads: pd.DataFrame, interactions: pd.DataFrame, cutoff: pd.Timestamp
) -> dict[str, np.ndarray]:
    """Fit the original deployment's model on the training leads and score the labelled holdout rows both ways."""
    from lifelines import CoxPHFitter

    from leadscore.data.features import features_at

    rows = ts.rows
    train_guids = rows.loc[ts.train_mask, "person_guid"].astype("str").unique()
    lead_info = leads.assign(person_guid=leads["person_guid"].astype("str")).set_index("person_guid")
    info = lead_info.loc[train_guids]
    split = pd.Timestamp(ts.split_time)
    origin, app = info["origin_date"], info["application_created"]
    applied = (app.notna() & (app < split)).to_numpy()
    end = app.where(pd.Series(applied, index=app.index), split)
    duration = ((end - origin) / pd.Timedelta(days=1)).clip(lower=1e-3).to_numpy(dtype=float)
    # whole history: counts as of the extract's end, after the landmark and after the application (the leak)
    whole = features_at(
        pd.DataFrame(
            {
                "person_guid": pd.Series(train_guids, dtype="str"),
                "as_of": pd.Series([cutoff] * len(train_guids), dtype="datetime64[us]"),
            }
        ),
        leads,
        interactions,
    )
    x = _naive_design(whole)
    df = x.assign(duration=duration, event=applied.astype(float))
    cph = CoxPHFitter(penalizer=0.8, l1_ratio=0.0).fit(df, "duration", "event")
    h0 = cph.baseline_cumulative_hazard_.iloc[:, 0]
    times, cum = h0.index.to_numpy(dtype=float), h0.to_numpy(dtype=float)

    hold = rows[ts.holdout_mask]
    hold = hold[hold["label"].notna()]
    age = hold["days_as_lead"].to_numpy(dtype=float)

    def h0_at(days: np.ndarray) -> np.ndarray:
        idx = np.searchsorted(times, days, side="right") - 1
        return np.where(idx >= 0, cum[np.clip(idx, 0, None)], 0.0)

    h0_age, h0_later = h0_at(age), h0_at(age + ts.horizon_days)

    def partial_hazard(features: pd.DataFrame) -> np.ndarray:
        return cph.predict_partial_hazard(_naive_design(features, list(x.columns))).to_numpy(dtype=float)

    def score(features: pd.DataFrame) -> np.ndarray:
        return -np.expm1(-h0_age * partial_hazard(features))

    hold_whole = features_at(
        pd.DataFrame(
            {
                "person_guid": hold["person_guid"].astype("str").reset_index(drop=True),
                "as_of": pd.Series([cutoff] * len(hold), dtype="datetime64[us]"),
            }
        ),
        leads,
        interactions,
    )
    return {
        "naive_as_deployed": score(hold),
        "naive_leaky_eval": score(hold_whole),
        # same fitted model, but the conditional probability of applying in (t, t+H]: isolates the score quantity
        "naive_conditional": -np.expm1(-(h0_later - h0_age) * partial_hazard(hold)),
    }


# --- one seed -----------------------------------------------------------------------------------------------------


def run_seed(leads: int, seed: int, anticipation: float = 0.6, extras: bool = True) -> dict[str, Any]:
    """Everything for one seed: the candidates, the ceiling, the gap references and the naive baseline."""
    from leadscore.model.evaluate import evaluate_scores
    from leadscore.model.train import train_and_evaluate
    from leadscore.model.training_set import build_landmarks, time_split
    from leadscore.settings import Settings
    from leadscore.tasks.ceiling import attach_truth

    started = time.perf_counter()
    settings = Settings()
    h = settings.horizon_days
    with tempfile.TemporaryDirectory(prefix="leadscore-quality-") as tmp:
        lead_t, inter_t, (truth, end) = sandbox_tables(leads, seed, anticipation, Path(tmp))
        rows = build_landmarks(lead_t, inter_t, end, settings.landmark_days, settings.training_window_days, h)
        rows = attach_truth(rows, truth, h)
        ts = time_split(rows, end, h)
        # The holdout metrics are the training-block fits'; the refit that serves changes none of them.
        result = train_and_evaluate(ts, settings, out_dir=Path(tmp) / "plots", refit=False)
        hold = ts.rows[ts.holdout_mask]
        hold = hold[hold["label"].notna()]
        y, age = hold["label"].to_numpy(dtype=float), hold["days_as_lead"].to_numpy(dtype=float)
        p_observable, z_mean = observable_posterior(hold, truth, h)
        scores = {"ceiling_observable": p_observable}
        if extras:
            scores["ceiling_without_z"] = ceiling_without_z(hold, truth, h)
            scores["hgb_oracle_z"] = hgb_with_z(result, ts, truth)
            scores.update(naive_baseline(ts, lead_t, inter_t, end))
        evaluation = pd.concat(
            [
                result.evaluation,
                pd.concat({k: evaluate_scores(y, p, age) for k, p in scores.items()}, names=["model"]),
            ]
        )
        z_r2 = z_r_squared(hold, truth, z_mean)
    metrics: dict[str, dict[str, dict[str, float]]] = {}
    for (model, segment), row in evaluation.iterrows():
        metrics.setdefault(str(model), {})[str(segment)] = {
            k: round(float(row[k]), 5) for k in ("n", "base_rate", "auc", "log_loss", "brier") if k in row
        }
    return {
        "seed": seed,
        "leads": leads,
        "anticipation": anticipation,
        "chosen": result.chosen,
        "counts": result.counts,
        "fit_seconds": {k: round(v, 1) for k, v in result.fit_seconds.items()},
        "skipped": result.skipped,
        "recalibration": result.recalibration,
        "params": result.params,
        "metrics": metrics,
        "ratios": ratios(metrics),
        "z_r_squared_observable": round(z_r2, 4),
        "seconds": round(time.perf_counter() - started, 1),
        "load_average": load_average(),
    }


def ratios(metrics: dict[str, dict[str, dict[str, float]]]) -> dict[str, dict[str, dict[str, float]]]:
    """Model AUC / ceiling AUC and model log loss / ceiling log loss, per model and segment."""
    ceiling = metrics["ceiling"]
    out: dict[str, dict[str, dict[str, float]]] = {}
    for model, by_seg in metrics.items():
        if model == "ceiling":
            continue
        out[model] = {
            seg: {
                "auc_ratio": round(m["auc"] / ceiling[seg]["auc"], 4),
                "log_loss_ratio": round(m["log_loss"] / ceiling[seg]["log_loss"], 4),
            }
            for seg, m in by_seg.items()
            if seg in ceiling
        }
    return out


def median_over_seeds(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Median over seeds of AUC, log loss and both ratios, per model and segment (seeds where a segment has one
    class only, NaN, are left out)."""
    out: dict[str, Any] = {}
    for model in runs[0]["metrics"]:
        out[model] = {}
        for seg in SEGMENTS:
            if seg not in runs[0]["metrics"][model]:
                continue
            entry = {
                k: round(float(np.nanmedian([r["metrics"][model][seg][k] for r in runs])), 4)
                for k in ("auc", "log_loss")
            }
            if model != "ceiling":
                for k in ("auc_ratio", "log_loss_ratio"):
                    entry[k] = round(float(np.nanmedian([r["ratios"][model][seg][k] for r in runs])), 4)
            out[model][seg] = entry
    return out


def gap_split(median: dict[str, Any], chosen: str) -> dict[str, Any]:
    """How much of the gap to the ceiling is z: measured on one learner (HGB), with and without z as a feature."""
    ceil = median["ceiling"]["all"]["auc"]
    hgb, orc = median["hgb"]["all"]["auc"], median["hgb_oracle_z"]["all"]["auc"]
    gap = ceil - hgb
    return {
        "chosen": chosen,
        "chosen_auc_gap_to_ceiling": round(ceil - median[chosen]["all"]["auc"], 4),
        "hgb_auc_gap_to_ceiling": round(gap, 4),
        "hgb_auc_gain_from_observing_z": round(orc - hgb, 4),
        "share_of_hgb_gap_closed_by_z": round((orc - hgb) / gap, 3) if gap > 0 else None,
        "ceiling_without_z_auc": median["ceiling_without_z"]["all"]["auc"],
        "ceiling_auc": ceil,
        # the best observable forecast (bench/observable_ceiling.py): what no model on these features can beat
        "observable_auc_ratio": median["ceiling_observable"]["all"]["auc_ratio"],
        "observable_log_loss_ratio": median["ceiling_observable"]["all"]["log_loss_ratio"],
    }


def main(argv: list[str] | None = None) -> int:
    """Run the seeds, the anticipation check, write ``bench/results/quality.json`` and print the summary line."""
    p = argparse.ArgumentParser(prog="quality.py", description=__doc__.split("\n")[0])
    p.add_argument("--seeds", type=int, nargs="+", default=[7, 8, 9])
    p.add_argument("--leads", type=int, default=20_000)
    p.add_argument("--no-anticipation-check", action="store_true")
    a = p.parse_args(argv)
    runs = []
    for seed in a.seeds:
        print(f"  quality: seed {seed} ...", flush=True)
        runs.append(run_seed(a.leads, seed))
        r = runs[-1]
        print(
            f"  quality: seed {seed}: chosen {r['chosen']}, AUC "
            + ", ".join(f"{m} {r['metrics'][m]['all']['auc']:.3f}" for m in (*MODELS, "naive_as_deployed")),
            flush=True,
        )
    median = median_over_seeds(runs)
    anticipation_check = None
    if not a.no_anticipation_check:
        print(f"  quality: seed {a.seeds[0]} with anticipation=0 ...", flush=True)
        r0 = run_seed(a.leads, a.seeds[0], anticipation=0.0, extras=False)
        anticipation_check = {
            "seed": a.seeds[0],
            "anticipation_0": {m: r0["metrics"][m]["all"] for m in (*MODELS, "ceiling_observable")},
            "ratios_anticipation_0": {m: r0["ratios"][m] for m in (*MODELS, "ceiling_observable") if m != "ceiling"},
            "anticipation_0.6": {m: runs[0]["metrics"][m]["all"] for m in MODELS},
        }
    chosen = max(set(r["chosen"] for r in runs), key=[r["chosen"] for r in runs].count)
    gap = gap_split(median, chosen)
    m_c, m_n = median[chosen]["all"], median["naive_as_deployed"]["all"]
    summary = (
        f"{len(runs)} seed(s) x {a.leads:,} leads: {chosen} AUC {m_c['auc']:.3f} (ceiling "
        f"{median['ceiling']['all']['auc']:.3f}, ratio {m_c['auc_ratio']:.3f}), log loss ratio "
        f"{m_c['log_loss_ratio']:.3f}; naive baseline AUC {m_n['auc']:.3f} / log loss {m_n['log_loss']:.3f} vs "
        f"{m_c['log_loss']:.3f}; best observable forecast ratios {gap['observable_auc_ratio']:.3f} / "
        f"{gap['observable_log_loss_ratio']:.3f}; load {load_average()[0]}"
    )
    write_result(
        "quality",
        {
            "method": __doc__,
            "seeds": a.seeds,
            "leads": a.leads,
            "median_over_seeds": median,
            "gap": gap,
            "anticipation_check": anticipation_check,
            "runs": runs,
        },
        summary,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
