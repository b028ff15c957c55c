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
  scoring        load_champion + read leads + features_as_of (interactions read from the Parquet extracts by
                 data.events) + select_leads + score_leads + write_score_files, over ALL open leads
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
# Above this many leads the HTTP full-history extract is replaced by bulk_load. Since the data layer streams the
# interactions page batch by batch the client needs ~1.7 GiB at 1M leads (measured), but the sandbox server then holds
# ~12.7 GiB: lower this with --http-max on a machine with less than ~20 GiB free.
HTTP_FULL_EXTRACT_MAX_LEADS = 1_000_000
GOAL_WEEKLY_S, GOAL_WEEKLY_MIB, GOAL_TRAIN_S = 30.0, 2 * 1024.0, 600.0  # issue 16: weekly <= 30 s and <= 2 GiB
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


def step_direct_week(work: Path) -> dict[str, Any]:
    from bench.common import DirectClient

    return _extract(work, _intervals(work)[1], False, DirectClient(_settings(work).sandbox_dir))


SHARDS = 4


def _shard_of(guids: Any, shards: int) -> Any:
    """Shard of each person GUID: its last hex digit modulo ``shards``."""
    import numpy as np
    import pyarrow.compute as pc

    last = pc.utf8_lower(pc.utf8_slice_codeunits(pc.fill_null(guids, "0"), -1)).to_numpy(zero_copy_only=False)
    lut = {c: int(c, 16) % shards for c in "0123456789abcdef"}
    return np.array([lut.get(c, 0) for c in last], dtype=np.int64)


def sharded_load(work: Path, leads: int, env: dict[str, str]) -> dict[str, Any]:
    """Fill the store as bulk_load does, in SHARDS person shards (each a bulk_load + weekly extract of its own
    sandbox files in a fresh process), then merge the shards' interval files into the store (sorted by key).

    For a machine where one bulk_load (13.6 GiB at 1M) does not fit: each shard holds a quarter of the tables.
    Persons merged into a person of another shard keep their rows in their own shard's files; the union is the same.
    """
    import shutil

    import pyarrow as pa
    import pyarrow.parquet as pq

    sys.path.insert(0, str(ROOT / "include"))  # the orchestrator merges in-process
    from leadscore.data.staged import parquet_bytes_writer
    from leadscore.files import atomic_write

    started = time.perf_counter()
    src = _settings(work).sandbox_dir
    roots = [work / "shards" / f"s{i}" for i in range(SHARDS)]
    split_done = work / "shards" / "split.done"
    for root in [] if split_done.exists() else roots:
        shutil.rmtree(root, ignore_errors=True)
        (root / "home" / "sandbox").mkdir(parents=True)
        shutil.copy(src / "meta.json", root / "home" / "sandbox" / "meta.json")
    for name in [] if split_done.exists() else ["leads", "interactions"]:
        reader = pq.ParquetFile(src / f"{name}.parquet")
        writers = [pq.ParquetWriter(r / "home" / "sandbox" / f"{name}.parquet", reader.schema_arrow) for r in roots]
        for group in range(reader.num_row_groups):
            table = reader.read_row_group(group)
            shard = _shard_of(table.column("person_guid"), SHARDS)
            for i, w in enumerate(writers):
                w.write_table(table.filter(pa.array(shard == i)))
        for w in writers:
            w.close()
    split_done.touch()
    steps = {}
    for i, root in enumerate(roots):
        for name in ("bulk_load", "direct_week"):
            steps[f"{name}_{i}"] = _step(name, root, leads // SHARDS, env)
    store_root = _settings(work).extracts_dir
    keys = {"leads": "person_guid", "interactions": "interaction_guid", "persons": "person_guid"}
    for query, key in keys.items():
        names = sorted({p.name for r in roots for p in (r / "home" / "extracts" / query).glob("*.parquet")})
        for file_name in names:
            parts = [pq.read_table(f) for r in roots if (f := r / "home" / "extracts" / query / file_name).exists()]
            table = pa.concat_tables(parts).sort_by(key)
            del parts
            atomic_write(store_root / query / file_name, parquet_bytes_writer(table))
            del table
    shutil.rmtree(work / "shards", ignore_errors=True)
    return {
        "step": "sharded_load",
        "wall_s": round(time.perf_counter() - started, 2),
        "peak_rss_mib": max([s["peak_rss_mib"] for s in steps.values()] + [peak_rss_mb()]),
        "shards": steps,
    }


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
    """The weekly scoring step as ``tasks.inference.score_week`` runs it, over ALL open leads, timed by phase."""
    import pandas as pd

    from leadscore.data.store import ExtractStore
    from leadscore.model.registry import load_champion
    from leadscore.scoring.files import write_score_files
    from leadscore.scoring.score import score_leads
    from leadscore.scoring.select import select_leads
    from leadscore.tasks.inference import week_inputs

    settings = _settings(work)
    week = _intervals(work)[1]
    phases: dict[str, float] = {}
    cpu: dict[str, float] = {}
    t, c = time.perf_counter(), time.process_time()

    def lap(name: str) -> None:
        nonlocal t, c
        now, now_c = time.perf_counter(), time.process_time()
        phases[name], cpu[name] = round(now - t, 2), round(now_c - c, 2)
        t, c = now, now_c

    model_home = work / "model_home.txt"
    model_settings = settings.replace(home=Path(model_home.read_text())) if model_home.exists() else settings
    store = ExtractStore(settings.extracts_dir)
    as_of = pd.Timestamp(week.end)
    champion_s: dict[str, float] = {}

    def load() -> Any:  # in the task's background thread (with its imports, as the task); timed on its own
        t0, c0 = time.perf_counter(), time.thread_time()

        out = load_champion(model_settings)
        champion_s.update(wall=round(time.perf_counter() - t0, 2), thread_cpu=round(time.thread_time() - c0, 2))
        return out

    # as the task reads: every lead originated within 100 years, so ALL open leads get features
    champion, leads, features = week_inputs(store, as_of, 100 * 365, load, lap)
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
        "phases_cpu_s": cpu,
        "champion_load_in_thread_s": champion_s,
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
    "direct_week": step_direct_week,
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
    profiler: Any = None
    if profile:
        try:  # pyinstrument when installed (not in requirements.txt), else the standard library's cProfile
            from pyinstrument import Profiler

            profiler = Profiler(interval=0.01)
        except ImportError:
            import cProfile

            profiler = cProfile.Profile()
        if hasattr(profiler, "start"):
            profiler.start()
        else:
            profiler.enable()
    started, cpu0 = time.perf_counter(), time.process_time()
    out = fn(*args)
    wall, cpu = time.perf_counter() - started, time.process_time() - cpu0
    if profiler is not None:
        prof_dir = work / "profiles"
        prof_dir.mkdir(exist_ok=True)
        path = prof_dir / f"{name}.txt"
        if hasattr(profiler, "output_text"):
            profiler.stop()
            path.write_text(profiler.output_text(unicode=False, color=False, show_all=False))
        else:
            import io
            import pstats

            profiler.disable()
            buf = io.StringIO()
            pstats.Stats(profiler, stream=buf).sort_stats("cumulative").print_stats(45)
            path.write_text(buf.getvalue())
        out["profile"] = str(path)
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


def mem_available_mib() -> float:
    """MemAvailable of the machine now, in MiB."""
    with open("/proc/meminfo") as fh:
        for line in fh:
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) / 1024
    return float("inf")


def _too_big(name: str, leads: int, done: dict[int, dict[str, Any]]) -> str | None:
    """A reason to skip ``name`` at ``leads`` when its peak, extrapolated linearly from the largest smaller size
    measured, would not fit in 80 % of the memory available now (the machine is shared); else None."""
    smaller = [n for n in sorted(done) if n < leads and "peak_rss_mib" in done[n].get(name, {})]
    if not smaller:
        return None
    n = smaller[-1]
    need = done[n][name]["peak_rss_mib"] * leads / n
    avail = mem_available_mib()
    if need > 0.8 * avail:
        return (
            f"skipped: peak extrapolated linearly from {n:,} leads ({done[n][name]['peak_rss_mib']:.0f} MiB) is "
            f"{need:.0f} MiB, more than 80 % of the {avail:.0f} MiB available on this shared machine"
        )
    return None


def bench_size(
    leads: int,
    work_root: Path,
    profile: set[str],
    done: dict[int, dict[str, Any]],
    train_max: int,
    http_max: int = HTTP_FULL_EXTRACT_MAX_LEADS,
    reuse_data: bool = False,
    sharded: bool = False,
    model_home: Path | None = None,
) -> dict[str, Any]:
    """Run every step at one size; returns the step measurements and the server's memory.

    ``reuse_data``: keep the size's work folder and take the data steps (generate, extracts, training set,
    training) from their logs when they completed before (the folder is shared with other benchmarks); the weekly
    steps (scoring, delivery) always run.

    The sandbox server runs only while a step talks to it (the web-service extracts, the delivery), so that its
    memory never competes with the steps that do not need it. Above ``train_max`` leads, training is skipped and
    scoring uses the champion trained at the largest smaller size (the same features; only the timing matters).
    """
    import shutil

    work = work_root / f"leads_{leads}"
    if work.exists() and not reuse_data:
        shutil.rmtree(work)
    work.mkdir(parents=True, exist_ok=True)
    base_env = child_env({"AIRFLOW_HOME": str(work / "airflow"), "LEADSCORE_HOME": str(work / "home")})
    data_dir = work / "home" / "sandbox"
    steps: dict[str, Any] = {"load_average_before": load_average(), "server": {}}

    def run(name: str, env: dict[str, str] = base_env) -> None:
        earlier = _logged_step(work, name) if reuse_data and name in DATA_STEPS else None
        if earlier is not None:
            print(f"  [{leads:,}] {name}: reused from {work / 'logs'}", flush=True)
            steps[name] = {**earlier, "reused_from_log": True}
            return
        reason = _too_big(name, leads, done)
        steps[name] = {"skipped": reason} if reason else _step(name, work, leads, env, name in profile)

    def serve(what: str) -> SandboxServer:
        server = SandboxServer(data_dir, work / "logs" / f"server_{what}.log", sftp_only=what == "delivery")
        steps["server"][f"start_s_{what}"] = server.start_seconds
        return server

    def server_peak(server: SandboxServer) -> None:
        peak = server.peak_rss_mb() or 0.0
        steps["server"]["peak_rss_mib"] = max(steps["server"].get("peak_rss_mib", 0.0), peak)

    def run_served(name: str) -> None:
        """Run ``name`` with the sandbox server up (not started when the step is reused from its log)."""
        if reuse_data and name in DATA_STEPS and _logged_step(work, name) is not None:
            run(name)
            return
        with serve(name) as server:
            run(name, {**base_env, **server.connections})
            server_peak(server)

    run("generate")
    if leads <= http_max:
        run_served("extract_full")
    else:
        steps["extract_full"] = {
            "skipped": (
                f"not run above --http-max {http_max:,} leads (the sandbox server alone holds ~12.7 GiB at 1M); "
                "bulk_load fills the store instead, extract_full_extrapolated estimates it"
            )
        }
        if sharded:
            earlier = _logged_step(work, "sharded_load") if reuse_data else None
            steps["sharded_load"] = earlier or sharded_load(work, leads, base_env)
            if earlier is None:
                (work / "logs" / "sharded_load.log").write_text(json.dumps(steps["sharded_load"]) + "\n")
            steps["extract_week"] = {"skipped": "the weekly extract ran in each shard of sharded_load (in-process)"}
        else:
            run("bulk_load")
    if "skipped" not in steps.get("extract_week", {}):
        run_served("extract_week")
    if leads <= train_max:
        run("training_set")
        run("training")
    else:
        for name in ("training_set", "training"):
            steps[name] = {"skipped": f"not run above {train_max:,} leads (time budget); see growth and extrapolation"}
        if model_home is not None:
            (work / "model_home.txt").write_text(str(model_home))
            steps["scoring_model_from"] = str(model_home)
        else:
            trained = max((n for n in done if n <= train_max), default=None)
            if trained is None:
                raise BenchError(f"no smaller size with a trained champion for scoring {leads:,} leads")
            (work / "model_home.txt").write_text(str(work_root / f"leads_{trained}" / "home"))
            steps["scoring_model_from"] = trained
    # a re-run of the weekly steps starts from no delivered week: otherwise the ledger would skip every file
    for leftover in ("scores", "ledger", "sandbox/sftp_root/incoming"):
        shutil.rmtree(work / "home" / leftover, ignore_errors=True)
    run("scoring")
    if "wall_s" in steps["scoring"]:
        run_served("delivery")
    if "wall_s" in steps["scoring"] and "wall_s" in steps["delivery"]:
        steps["weekly_scoring_plus_delivery"] = {
            "wall_s": round(steps["scoring"]["wall_s"] + steps["delivery"]["wall_s"], 2),
            "process_wall_s_incl_imports": round(
                steps["scoring"]["process_wall_s"] + steps["delivery"]["process_wall_s"], 2
            ),
            "peak_rss_mib": max(steps["scoring"]["peak_rss_mib"], steps["delivery"]["peak_rss_mib"]),
            "scored": steps["scoring"]["scored"],
        }
    shutil.rmtree(work / "home" / "scores", ignore_errors=True)
    return steps


DATA_STEPS = ("generate", "extract_full", "bulk_load", "extract_week", "training_set", "training")


def _logged_step(work: Path, name: str) -> dict[str, Any] | None:
    """The measurements a completed earlier run of step ``name`` left in its log, None when it did not complete."""
    log_path = work / "logs" / f"{name}.log"
    if not log_path.exists():
        return None
    lines = [ln for ln in log_path.read_text(errors="replace").splitlines() if ln.startswith('{"step"')]
    return json.loads(lines[-1]) if lines else None


def reuse_size(work: Path) -> dict[str, Any] | None:
    """The measurements of an earlier run at one size, read back from its step logs; None when incomplete."""
    steps: dict[str, Any] = {"reused_from_logs": str(work / "logs")}
    for name in (
        "generate",
        "extract_full",
        "bulk_load",
        "extract_week",
        "training_set",
        "training",
        "scoring",
        "delivery",
    ):
        log_path = work / "logs" / f"{name}.log"
        if not log_path.exists():
            continue
        lines = [ln for ln in log_path.read_text(errors="replace").splitlines() if ln.startswith('{"step"')]
        if not lines:
            return None
        steps[name] = json.loads(lines[-1])
    if "scoring" not in steps or "delivery" not in steps:
        return None
    steps["weekly_scoring_plus_delivery"] = {
        "wall_s": round(steps["scoring"]["wall_s"] + steps["delivery"]["wall_s"], 2),
        "peak_rss_mib": max(steps["scoring"]["peak_rss_mib"], steps["delivery"]["peak_rss_mib"]),
        "scored": steps["scoring"]["scored"],
    }
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


def extrapolate_training(results: dict[int, dict[str, Any]], target: int = 1_000_000) -> dict[str, Any] | None:
    """Training time at ``target`` leads: power law through the two largest measured sizes, else linear."""
    import math

    measured = [n for n in sorted(results) if "wall_s" in results[n].get("training", {})]
    if not measured or max(measured) >= target:
        return None
    hi = measured[-1]
    k, method = 1.0, "linear in leads from one measured size"
    if len(measured) >= 2:
        lo = measured[-2]
        k = math.log(results[hi]["training"]["wall_s"] / results[lo]["training"]["wall_s"]) / math.log(hi / lo)
        method = f"power law t ~ n^k through {lo:,} and {hi:,} leads"
    return {
        "from_leads": hi,
        "to_leads": target,
        "exponent": round(k, 2),
        "method": method,
        "wall_s": round(results[hi]["training"]["wall_s"] * (target / hi) ** k, 0),
        "peak_rss_mib_linear": round(results[hi]["training"]["peak_rss_mib"] * target / hi, 0),
    }


def summarize(results: dict[int, dict[str, Any]]) -> str:
    """One line: the weekly path at the largest size, training at the largest trained size."""
    weekly = [n for n in sorted(results) if "weekly_scoring_plus_delivery" in results[n]]
    trained = [n for n in sorted(results) if "wall_s" in results[n].get("training", {})]
    parts = []
    if weekly:
        w = results[weekly[-1]]["weekly_scoring_plus_delivery"]
        parts.append(
            f"{weekly[-1]:,} leads: weekly scoring+delivery {w['wall_s']:.0f} s / {w['peak_rss_mib'] / GIB:.2f} GiB "
            f"({w['scored']:,} scored; goal <= {GOAL_WEEKLY_S:.0f} s, <= {GOAL_WEEKLY_MIB / GIB:.0f} GiB)"
        )
    if trained:
        t = results[trained[-1]]["training"]
        parts.append(f"training {t['wall_s']:.0f} s at {trained[-1]:,} (goal <= 600 s at 1M)")
    return "; ".join(parts) + f"; load {load_average()[0]}"


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
    p.add_argument("--reuse", action="store_true", help="reuse sizes whose step logs are complete (no rerun)")
    p.add_argument(
        "--reuse-data", action="store_true", help="keep the work folders; rerun only the steps not completed before"
    )
    p.add_argument("--http-max", type=int, default=HTTP_FULL_EXTRACT_MAX_LEADS, help="largest HTTP full extract")
    p.add_argument("--train-max", type=int, default=300_000, help="largest size at which training is run")
    p.add_argument("--sharded", action="store_true", help="above --http-max load the store in person shards")
    p.add_argument("--model-home", type=Path, help="LEADSCORE_HOME whose champion scores the sizes above --train-max")
    a = p.parse_args(argv)
    results: dict[int, dict[str, Any]] = {}
    sizes = sorted(a.leads)
    for n in sizes:
        # profile each named step at the largest size where it runs
        profile = {
            s
            for s in a.profile
            if n == max(m for m in sizes if s not in ("training_set", "training") or m <= a.train_max)
        }
        reused = reuse_size(a.work / f"leads_{n}") if a.reuse else None
        results[n] = reused or bench_size(
            n, a.work, profile, results, a.train_max, a.http_max, a.reuse_data, a.sharded, a.model_home
        )
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
            "training_extrapolated": extrapolate_training(results),
        },
        summary,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
