"""Scale benchmark: wall time and peak memory of every pipeline step at 100,000 to 1,000,000 leads.

Each step runs in a fresh interpreter (``python bench/scale.py step <name> <workdir>``) and reports its own wall time
and peak RSS (``ru_maxrss``), so every peak belongs to one step. The sandbox Slate is served by a separate process
(its memory is reported apart, it is not the pipeline's). Steps, in order, per size:

  generate       the sandbox generator writes N leads (and ~25 interactions per lead) to Parquet
  extract_full   lead_data's first run: the whole history through the web service (paged HTTP, validate, clean, store)
  bulk_load      the same extract fed from the server's own tables in-process (no HTTP/JSON): used where extract_full
                 is skipped, so that the later steps have data
  extract_week   lead_data's weekly run: one week's new and changed records through the web service
  training_set   lead_training's build_training_set (landmark rows, point-in-time features, time split, ceiling)
  training       lead_training's train_and_register (Cox + challengers + evaluation + MLflow + gate)
  scoring        features_as_of + select_leads + score_leads + write_score_files, over ALL open leads
  delivery       the score files over SFTP to the sandbox on 127.0.0.1 (.part + rename + size check)

Usage: ``python bench/scale.py [--leads 100000 1000000] [--profile]``; default sizes come from run_all.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import (
    ROOT,
    BenchError,
    SandboxServer,
    child_env,
    load_average,
    peak_rss_mb,
    run_step,
    write_result,
)

SEED = 11
GIB = 1024.0
# Above this many leads the HTTP full-history extract is not run: the client holds every page's rows as Python
# dicts/strings before validation (measured ~5 GB at 200k leads), so 1M leads would need ~20-25 GB on a shared box.
HTTP_FULL_EXTRACT_MAX_LEADS = 200_000
GOAL_WEEKLY_S, GOAL_WEEKLY_MIB, GOAL_TRAIN_S = 60.0, 3 * 1024.0, 600.0
STEP_TIMEOUT_S = 3600.0


# --- the steps (each runs in its own interpreter) ------------------------------------------------------------------


def _settings(work: Path) -> Any:
    from leadscore.settings import Settings

    return Settings().replace(home=work / "home")


def _meta_end(work: Path) -> datetime:
    meta = json.loads((_settings(work).sandbox_dir / "meta.json").read_text())
    return datetime.fromisoformat(meta["end"])


def _intervals(work: Path) -> tuple[Any, Any]:
    """(history interval ending a week before the sandbox's end, the last week)."""
    from leadscore.intervals import Interval

    end = _meta_end(work)
    return Interval(end - timedelta(days=14), end - timedelta(days=7)), Interval(end - timedelta(days=7), end)


def step_generate(work: Path, leads: int) -> dict[str, Any]:
    from leadscore.sandbox.generator import generate_command

    meta = generate_command(leads=leads, seed=SEED, out=_settings(work).sandbox_dir)
    return {"leads": int(meta["leads"]), "interaction_rows": int(meta["interaction_rows"])}


def _extract(work: Path, interval: Any, full: bool, client: Any) -> dict[str, Any]:
    from leadscore.data.extract import extract_interval
    from leadscore.data.store import ExtractStore

    settings = _settings(work)
    summary = extract_interval(
        client, ExtractStore(settings.extracts_dir), settings, interval.start, interval.end, full_history=full
    )
    return {
        "leads_rows": summary.leads.rows_in,
        "interaction_rows": summary.interactions.rows_in,
        "pages": summary.leads.pages + summary.interactions.pages,
        "fetch_s": round(summary.leads.fetch_seconds + summary.interactions.fetch_seconds, 2),
    }


def step_extract_full(work: Path) -> dict[str, Any]:
    from bench.common import api_config_from_env
    from leadscore.slate.client import SlateClient

    with SlateClient(api_config_from_env()) as client:
        return _extract(work, _intervals(work)[0], True, client)


def step_extract_week(work: Path) -> dict[str, Any]:
    from bench.common import api_config_from_env
    from leadscore.slate.client import SlateClient

    with SlateClient(api_config_from_env()) as client:
        return _extract(work, _intervals(work)[1], False, client)


def step_bulk_load(work: Path) -> dict[str, Any]:
    from bench.common import DirectClient

    return _extract(work, _intervals(work)[0], True, DirectClient(_settings(work).sandbox_dir))


def step_training_set(work: Path) -> dict[str, Any]:
    from leadscore.tasks.training import build_training_set

    built = build_training_set(_settings(work))
    (work / "built.json").write_text(json.dumps(built, default=str))
    return {k: built[k] for k in ("rows", "train_rows", "holdout_rows", "leads", "events", "has_truth")}


def step_training(work: Path) -> dict[str, Any]:
    from leadscore.tasks.training import train_and_register

    built = json.loads((work / "built.json").read_text())
    out = train_and_register(_settings(work), built)
    return {
        "chosen": out["chosen"],
        "gate": out["gate"],
        "fit_seconds": {k: round(v, 1) for k, v in out["fit_seconds"].items()},
        "holdout": out["holdout"],
    }


def step_scoring(work: Path) -> dict[str, Any]:
    import pandas as pd

    from leadscore.data.features import features_as_of
    from leadscore.data.store import ExtractStore
    from leadscore.model.registry import load_champion
    from leadscore.scoring.files import write_score_files
    from leadscore.scoring.score import score_leads
    from leadscore.scoring.select import select_leads

    settings = _settings(work)
    week = _intervals(work)[1]
    phases: dict[str, float] = {}
    t = time.perf_counter()

    def lap(name: str) -> None:
        nonlocal t
        now = time.perf_counter()
        phases[name] = round(now - t, 2)
        t = now

    champion = load_champion(settings)
    lap("load_champion")
    store = ExtractStore(settings.extracts_dir)
    leads, interactions = store.read_all("leads"), store.read_all("interactions")
    lap("read_extracts")
    as_of = pd.Timestamp(week.end)
    features = features_as_of(leads, interactions, as_of)
    lap("features_as_of")
    del interactions
    # "all open leads": a lookback covering the whole history; the weekly default (lookback_days) is counted too
    selected = select_leads(features, leads, as_of, 100 * 365)
    lap("select_leads")
    scores = score_leads(champion.model, selected, champion.version, week.end_date, settings)
    lap("score_leads")
    manifest = write_score_files(scores, settings.scores_dir, week.end_date, settings.chunk_rows, settings.chunk_bytes)
    lap("write_score_files")
    default_pool = len(select_leads(features, leads, as_of, settings.lookback_days))
    (work / "manifest_path.txt").write_text(str(manifest.directory / "manifest.json"))
    return {
        "open_leads": len(features),
        "scored": len(scores),
        "default_lookback_pool": default_pool,
        "files": len(manifest.files),
        "mb_written": round(manifest.bytes / 1e6, 1),
        "model_kind": getattr(champion.model, "kind", None),
        "phases_s": phases,
    }


def step_delivery(work: Path) -> dict[str, Any]:
    from leadscore.scoring.files import read_manifest
    from leadscore.slate.delivery import deliver

    manifest = read_manifest(Path((work / "manifest_path.txt").read_text()))
    from airflow.providers.sftp.hooks.sftp import SFTPHook  # noqa: F401  (import once; reported in import_s)

    report = deliver(manifest, _settings(work), backoff_seconds=0.2)
    if report.sent != len(manifest.files):
        raise BenchError(f"delivery sent {report.sent} of {len(manifest.files)} files")
    return {"files": report.sent, "mb_sent": round(report.bytes / 1e6, 1)}


STEPS = {
    "generate": step_generate,
    "extract_full": step_extract_full,
    "bulk_load": step_bulk_load,
    "extract_week": step_extract_week,
    "training_set": step_training_set,
    "training": step_training,
    "scoring": step_scoring,
    "delivery": step_delivery,
}


def run_one_step(name: str, work: Path, leads: int, profile: bool) -> dict[str, Any]:
    """Body of a step subprocess: run the step (optionally under pyinstrument) and return its measurements."""
    os.environ.setdefault("AIRFLOW_HOME", str(work / "airflow"))
    imports_started = time.perf_counter()
    import numpy  # noqa: F401
    import pandas  # noqa: F401

    import_s = time.perf_counter() - imports_started
    fn = STEPS[name]
    args = (work, leads) if name == "generate" else (work,)
    profiler = None
    if profile:
        from pyinstrument import Profiler

        profiler = Profiler(interval=0.01)
        profiler.start()
    started, cpu0 = time.perf_counter(), time.process_time()
    out = fn(*args)
    wall, cpu = time.perf_counter() - started, time.process_time() - cpu0
    if profiler is not None:
        profiler.stop()
        prof_dir = work / "profiles"
        prof_dir.mkdir(exist_ok=True)
        (prof_dir / f"{name}.txt").write_text(profiler.output_text(unicode=False, color=False, show_all=False))
        (prof_dir / f"{name}.html").write_text(profiler.output_html())
        out["profile"] = str(prof_dir / f"{name}.txt")
    return {
        "step": name,
        "wall_s": round(wall, 2),
        "cpu_s": round(cpu, 2),
        "import_s": round(import_s, 2),
        "peak_rss_mib": peak_rss_mb(),
        **out,
    }


# --- the orchestrator ---------------------------------------------------------------------------------------------


def _step(name: str, work: Path, leads: int, env: dict[str, str], profile: bool = False) -> dict[str, Any]:
    argv = [str(ROOT / "bench" / "scale.py"), "step", name, str(work), str(leads)] + (["--profile"] if profile else [])
    print(f"  [{leads:,}] {name} ...", flush=True)
    out = run_step(argv, work / "logs" / f"{name}.log", STEP_TIMEOUT_S, env)
    print(f"  [{leads:,}] {name}: {out['wall_s']} s, peak {out['peak_rss_mib']:.0f} MiB", flush=True)
    return out


def bench_size(leads: int, work_root: Path, profile: set[str]) -> dict[str, Any]:
    """Run every step at one size; returns the step measurements and the server's memory."""
    import shutil

    work = work_root / f"leads_{leads}"
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    env = child_env({"AIRFLOW_HOME": str(work / "airflow"), "LEADSCORE_HOME": str(work / "home")})
    steps: dict[str, Any] = {"load_average_before": load_average()}
    steps["generate"] = _step("generate", work, leads, env, "generate" in profile)
    data_dir = work / "home" / "sandbox"
    with SandboxServer(data_dir, work / "logs" / "server.log") as server:
        steps["server"] = {"start_s": server.start_seconds, "peak_rss_mib_after_start": server.peak_rss_mb()}
        env = {**env, **server.connections}
        if leads <= HTTP_FULL_EXTRACT_MAX_LEADS:
            steps["extract_full"] = _step("extract_full", work, leads, env, "extract_full" in profile)
        else:
            steps["extract_full"] = {
                "skipped": (
                    f"not run above {HTTP_FULL_EXTRACT_MAX_LEADS:,} leads: the client keeps every page's rows as "
                    "Python dicts/strings until validation (about 5 GB at 200k leads, extrapolated ~20-25 GB at 1M); "
                    "see extrapolated figures and bulk_load"
                )
            }
            steps["bulk_load"] = _step("bulk_load", work, leads, env, "bulk_load" in profile)
        steps["extract_week"] = _step("extract_week", work, leads, env, "extract_week" in profile)
        for name in ("training_set", "training", "scoring", "delivery"):
            steps[name] = _step(name, work, leads, env, name in profile)
        steps["server"]["peak_rss_mib"] = server.peak_rss_mb()
    weekly = steps["scoring"]["wall_s"] + steps["delivery"]["wall_s"]
    weekly_proc = steps["scoring"]["process_wall_s"] + steps["delivery"]["process_wall_s"]
    steps["weekly_scoring_plus_delivery"] = {
        "wall_s": round(weekly, 2),
        "process_wall_s_incl_imports": round(weekly_proc, 2),
        "peak_rss_mib": max(steps["scoring"]["peak_rss_mib"], steps["delivery"]["peak_rss_mib"]),
        "scored": steps["scoring"]["scored"],
    }
    shutil.rmtree(work / "home" / "scores", ignore_errors=True)
    return steps


def growth(results: dict[int, dict[str, Any]]) -> dict[str, Any]:
    """Per step: time and memory ratio between the smallest and largest size, and the exponent k of t ~ n^k."""
    import math

    sizes = sorted(results)
    if len(sizes) < 2:
        return {}
    lo, hi = sizes[0], sizes[-1]
    out: dict[str, Any] = {}
    for name, a in results[lo].items():
        b = results[hi].get(name)
        if not isinstance(a, dict) or not isinstance(b, dict) or "wall_s" not in a or "wall_s" not in b:
            continue
        t_ratio = b["wall_s"] / max(a["wall_s"], 1e-3)
        entry = {
            "time_ratio": round(t_ratio, 2),
            "time_exponent": round(math.log(max(t_ratio, 1e-9)) / math.log(hi / lo), 2),
        }
        if "peak_rss_mib" in a:
            entry["memory_ratio"] = round(b["peak_rss_mib"] / max(a["peak_rss_mib"], 1.0), 2)
        out[name] = entry
    return {"from": lo, "to": hi, "steps": out}


def extrapolate_full_extract(results: dict[int, dict[str, Any]], target: int = 1_000_000) -> dict[str, Any] | None:
    """Linear extrapolation of the HTTP full extract to ``target`` leads from the largest measured size."""
    measured = [n for n in sorted(results) if "wall_s" in results[n].get("extract_full", {})]
    if not measured:
        return None
    n = measured[-1]
    m = results[n]["extract_full"]
    f = target / n
    return {
        "from_leads": n,
        "to_leads": target,
        "method": "linear in leads (pages and rows grow linearly; nothing in the path is worse than linear)",
        "wall_s": round(m["wall_s"] * f, 0),
        "peak_rss_mib": round(m["peak_rss_mib"] * f, 0),
    }


def summarize(results: dict[int, dict[str, Any]]) -> str:
    big = max(results)
    r = results[big]
    w = r["weekly_scoring_plus_delivery"]
    return (
        f"{big:,} leads: weekly scoring+delivery {w['wall_s']:.0f} s / {w['peak_rss_mib'] / GIB:.2f} GiB "
        f"({w['scored']:,} scored; goal <= {GOAL_WEEKLY_S:.0f} s, <= 3 GiB), training {r['training']['wall_s']:.0f} s "
        f"(goal <= 600 s), training set {r['training_set']['wall_s']:.0f} s, load {load_average()[0]}"
    )


def main(argv: list[str] | None = None) -> int:
    """Entry: ``step <name> <work> <leads>`` runs one step; otherwise the whole benchmark over ``--leads``."""
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "step":
        p = argparse.ArgumentParser(prog="scale.py step")
        p.add_argument("name", choices=sorted(STEPS))
        p.add_argument("work", type=Path)
        p.add_argument("leads", type=int)
        p.add_argument("--profile", action="store_true")
        a = p.parse_args(argv[1:])
        print(json.dumps(run_one_step(a.name, a.work, a.leads, a.profile), default=str))
        return 0
    p = argparse.ArgumentParser(prog="scale.py", description=__doc__.split("\n")[0])
    p.add_argument("--leads", type=int, nargs="+", default=[100_000])
    p.add_argument("--work", type=Path, default=Path(os.environ.get("LEADSCORE_HOME", ROOT / ".leadscore")) / "bench")
    p.add_argument("--profile", nargs="*", default=[], help="steps to run under pyinstrument (at the largest size)")
    p.add_argument("--name", default="scale")
    a = p.parse_args(argv)
    results: dict[int, dict[str, Any]] = {}
    for n in sorted(a.leads):
        profile = set(a.profile) if n == max(a.leads) else set()
        results[n] = bench_size(n, a.work, profile)
    summary = summarize(results)
    write_result(
        a.name,
        {
            "goals": {
                "weekly_scoring_plus_delivery_s": GOAL_WEEKLY_S,
                "weekly_peak_mib": GOAL_WEEKLY_MIB,
                "training_s": GOAL_TRAIN_S,
            },
            "notes": [
                "Each step runs in a fresh interpreter; wall_s is the step's own time after imports, process_wall_s "
                "includes interpreter start and imports; peak_rss_mib is the step process's ru_maxrss.",
                "The sandbox server (web service + SFTP) is a separate process; its peak is reported under server.",
                "scoring scores ALL open leads (lookback covering the whole history); default_lookback_pool is how "
                "many a weekly run with the default lookback_days would score.",
                "training is train_and_register: three candidate fits, evaluation, plots, MLflow logging, the gate, "
                "the reference profile and the insight report.",
            ],
            "sizes": {str(n): r for n, r in results.items()},
            "growth": growth(results),
            "extract_full_extrapolated": extrapolate_full_extract(results),
        },
        summary,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
