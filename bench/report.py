"""Render the README's benchmark tables (Markdown) from the JSON files in ``bench/results/``.

Usage: ``python bench/report.py`` prints the section and draws ``bench/results/scale_curves.png`` (time and memory
of each step against leads); ``--readme`` also rewrites the README's scale table (between its markers). Reads the
committed full results (``bench/results/full/``, written by ``BENCH_FULL=1 make bench``), else the latest local ones.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import FULL_RESULTS_DIR, RESULTS_DIR, ROOT

STEP_LABELS = {
    "generate": "generate the sandbox",
    "extract_full": "full-history extract (HTTP web service)",
    "bulk_load": "full-history extract, in-process (no HTTP)",
    "sharded_load": "full-history + weekly extract, in-process in 4 person shards (no HTTP)",
    "extract_week": "weekly incremental extract (HTTP)",
    "training_set": "build the training set",
    "training": "training (3 candidates, MLflow, gate)",
    "scoring": "scoring all open leads + files",
    "delivery": "SFTP delivery",
    "weekly_scoring_plus_delivery": "**weekly scoring + delivery**",
}


def _load(name: str) -> dict[str, Any] | None:
    """The committed full result of ``name`` (``bench/results/full/``), else the latest local one, else None."""
    for folder in (FULL_RESULTS_DIR, RESULTS_DIR):
        path = folder / f"{name}.json"
        if path.exists():
            return json.loads(path.read_text())
    return None


def _machine(m: dict[str, Any]) -> str:
    la = m["load_average"]
    return f"{m['date']}, {m['cores']} cores, {m['memory_gib']} GiB, {m['cpu']}, load {la[0]}/{la[1]}/{la[2]}"


def _cell(step: dict[str, Any] | None) -> str:
    if not step:
        return "-"
    if "skipped" in step:
        return "skipped"
    cpu = f" (CPU {step['cpu_s']:.1f} s)" if "cpu_s" in step else ""
    return f"{step['wall_s']:.1f} s{cpu} / {step['peak_rss_mib'] / 1024:.2f} GiB"


def _weekly(r: dict[str, Any], n: str) -> dict[str, Any] | None:
    """The weekly path (scoring + delivery) at size ``n``, with the CPU time of both steps."""
    size = r["sizes"][n]
    w = size.get("weekly_scoring_plus_delivery")
    if not w:
        return None
    cpu = [size[s]["cpu_s"] for s in ("scoring", "delivery") if "cpu_s" in size.get(s, {})]
    return {**w, **({"cpu_s": round(sum(cpu), 2)} if len(cpu) == 2 else {})}


def scale_table(r: dict[str, Any]) -> list[str]:
    """The README's scale table: per step and size wall time after imports (CPU time) / peak RSS, and growth."""
    sizes = sorted(r["sizes"], key=int)
    lines = [
        f"Scale ({_machine(r['machine'])}); each step in a fresh process, wall time after imports (CPU time of all "
        "threads) / peak RSS of the step's own process:",
        "",
        "| step | " + " | ".join(f"{int(n):,} leads" for n in sizes) + " | growth (time exponent k, t ~ n^k) |",
        "|---|" + "---|" * len(sizes) + "---|",
    ]
    growth = r.get("growth", {}).get("steps", {})
    for key, label in STEP_LABELS.items():
        if not any(key in r["sizes"][n] for n in sizes):
            continue
        g = growth.get(key)
        cells = [
            _cell(_weekly(r, n) if key == "weekly_scoring_plus_delivery" else r["sizes"][n].get(key)) for n in sizes
        ]
        lines.append(f"| {label} | " + " | ".join(cells) + f" | {g['time_exponent'] if g else '-'} |")
    ext = r.get("extract_full_extrapolated")
    if (
        ext
        and ext["to_leads"] > ext["from_leads"]
        and any("skipped" in r["sizes"][n].get("extract_full", {}) for n in sizes)
    ):
        lines.append(
            f"| full-history extract (HTTP), extrapolated to {ext['to_leads']:,} | | "
            f"~{ext['wall_s']:.0f} s / ~{ext['peak_rss_mib'] / 1024:.1f} GiB | linear |"
        )
    tex = r.get("training_extrapolated")
    if tex:
        lines.append(f"| training, extrapolated to {tex['to_leads']:,} | | ~{tex['wall_s']:.0f} s | {tex['method']} |")
    lines += ["", *_phase_lines(r, sizes)]
    return lines


def _phase_lines(r: dict[str, Any], sizes: list[str]) -> list[str]:
    """Per size: the scoring step's phases (wall / CPU seconds), the load average around it, what was scored."""
    out = []
    for n in sizes:
        sc = r["sizes"][n].get("scoring", {})
        if "phases_s" not in sc:
            continue
        cpu = sc.get("phases_cpu_s", {})
        phases = ", ".join(f"{k} {v:.1f}" + (f"/{cpu[k]:.1f}" if k in cpu else "") for k, v in sc["phases_s"].items())
        load = sc.get("load_average_after", ["?"])[0]
        out.append(
            f"- {int(n):,} leads: scoring phases (wall/CPU s) {phases}; {sc['scored']:,} open leads scored "
            f"({sc.get('default_lookback_pool', 0):,} in the default lookback), {sc['files']} files; "
            f"load {load} after the step."
        )
    return out


def scale_plot(r: dict[str, Any], path: Path, feats: dict[str, Any] | None = None) -> Path:
    """Draw wall time and peak RSS against leads (log-log) for every measured step (and, from ``feats``, the feature
    path alone with its CPU time and the path it replaced); returns the PNG written."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sizes = sorted(r["sizes"], key=int)
    fig, (ax_t, ax_m) = plt.subplots(1, 2, figsize=(12, 4.8))
    for key, label in STEP_LABELS.items():
        pts = [
            (int(n), step)
            for n in sizes
            if (step := (_weekly(r, n) if key == "weekly_scoring_plus_delivery" else r["sizes"][n].get(key)))
            and "wall_s" in step
        ]
        if len(pts) < 2:
            continue
        xs = [p[0] for p in pts]
        style = {"linewidth": 3, "color": "black"} if key == "weekly_scoring_plus_delivery" else {}
        name = label.strip("*")
        ax_t.plot(xs, [p[1]["wall_s"] for p in pts], marker="o", label=name, **style)
        ax_m.plot(xs, [p[1]["peak_rss_mib"] / 1024 for p in pts], marker="o", label=name, **style)
    if feats:
        fs = sorted(feats["sizes"], key=int)
        xs = [int(n) for n in fs]
        m = [feats["sizes"][n] for n in fs]
        ax_t.plot(xs, [v["features_wall_s"] for v in m], marker="s", color="tab:green", label="features_as_of (wall)")
        ax_t.plot(xs, [v["features_cpu_s"] for v in m], marker="s", ls=":", color="tab:green", label="features (CPU)")
        ax_m.plot(xs, [v["peak_rss_mib"] / 1024 for v in m], marker="s", color="tab:green", label="features_as_of")
        old = [
            (int(n), feats["sizes"][n]["before_store_read_all_then_frame"])
            for n in fs
            if "before_store_read_all_then_frame" in feats["sizes"][n]
        ]
        if old:
            ax_t.plot([o[0] for o in old], [o[1]["cpu_s"] for o in old], "x", color="tab:red", label="before (CPU)")
            ax_m.plot(
                [o[0] for o in old], [o[1]["peak_rss_mib"] / 1024 for o in old], "x", color="tab:red", label="before"
            )
    goals = r.get("goals", {})
    if goals.get("weekly_scoring_plus_delivery_s"):
        ax_t.axhline(goals["weekly_scoring_plus_delivery_s"], color="red", linestyle="--", label="weekly goal")
    if goals.get("weekly_peak_mib"):
        ax_m.axhline(goals["weekly_peak_mib"] / 1024, color="red", linestyle="--", label="weekly goal")
    for ax, title in (
        (ax_t, "time after imports (s): wall solid, CPU dotted, x = before (CPU)"),
        (ax_m, "peak RSS of the step (GiB)"),
    ):
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("leads")
        ax.set_title(title)
        ax.grid(True, which="both", alpha=0.3)
    ax_m.legend(fontsize=7, loc="upper left")
    fig.suptitle(
        f"Scale on {r['machine']['cores']} cores ({r['machine']['date']}, load {r['machine']['load_average'][0]})"
    )
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


README_START, README_END = "<!-- scale-table:start (bench/report.py --readme) -->", "<!-- scale-table:end -->"
QUALITY_START = "<!-- quality-table:start (bench/report.py --readme) -->"
QUALITY_END = "<!-- quality-table:end -->"


# The 1M runs on a quiet machine (scoring profiled, then not), beside the size curve measured under load.
SCALE_RUNS = ("scale_1m", "scale_1m_unprofiled")


def write_readme_scale(
    r: dict[str, Any], readme: Path, feats: dict[str, Any] | None = None, extra: list[dict[str, Any]] | None = None
) -> None:
    """Replace the README's scale table (between the markers) by the one rendered from ``r`` (then ``extra``'s).

    Raises:
        ValueError: the README lacks the markers.
    """
    lines = scale_table(r)
    for e in extra or []:
        lines += ["", *scale_table(e)]
    write_readme_block(readme, README_START, README_END, lines + (["", *features_table(feats)] if feats else []))


def write_readme_block(readme: Path, start: str, end: str, lines: list[str]) -> None:
    """Replace the README's text between the ``start`` and ``end`` markers by ``lines``.

    Raises:
        ValueError: the README lacks the markers.
    """
    text = readme.read_text()
    if start not in text or end not in text:
        raise ValueError(f"{readme} lacks the markers {start!r} ... {end!r}")
    head, rest = text.split(start, 1)
    _, tail = rest.split(end, 1)
    block = "\n".join(lines)
    readme.write_text(f"{head}{start}\n{block}\n{end}{tail}")


def features_table(r: dict[str, Any]) -> list[str]:
    """The feature path alone (bench/features_scale.py) per size: wall / CPU / peak RSS."""
    lines = [
        f"Feature path alone ({_machine(r['machine'])}): features_as_of over every open lead, interactions read from "
        "one full-history interval by data.events:",
        "",
        "| leads | open leads | stored interactions | wall | CPU | peak RSS |",
        "|---|---|---|---|---|---|",
    ]
    for n in sorted(r["sizes"], key=int):
        m = r["sizes"][n]
        lines.append(
            f"| {int(n):,} | {m['open_leads']:,} | {m['interaction_rows']:,} | {m['features_wall_s']:.1f} s | "
            f"{m['features_cpu_s']:.1f} s | {m['peak_rss_mib'] / 1024:.2f} GiB |"
        )
        old = m.get("before_store_read_all_then_frame")
        if old:
            lines.append(
                f"| {int(n):,}, before (read_all + frame) | {old['open_leads']:,} | | {old['wall_s']:.1f} s | "
                f"{old['cpu_s']:.1f} s | {old['peak_rss_mib'] / 1024:.2f} GiB |"
            )
    return lines


QUALITY_LABELS = {
    "ceiling": "ceiling (true probability, knows z)",
    "ceiling_observable": "best observable forecast (exact posterior of z from the features)",
    "ceiling_without_z": "ceiling without z (source, college, age only)",
    "hgb_oracle_z": "hgb + z (oracle feature)",
    "naive_as_deployed": "original deployment's naive baseline",
    "naive_leaky_eval": "same, evaluated on whole-history counts (its own leaky check)",
    "naive_conditional": "same, scored as P(apply in 30 d \\| open)",
}


def quality_table(q: dict[str, Any]) -> list[str]:
    """The quality table: per model and lead-age bucket, median AUC / log loss and ratios, beside the baseline."""
    med = q["median_over_seeds"]
    chosen = q.get("gap", {}).get("chosen")
    # the committed 3-seed figures of the issue-14 baseline, commit 12c7a94 (bench/results/quality_before.json)
    before = (_load("quality_before") or {}).get("median_over_seeds", {})
    lines = [
        f"Quality, median over seeds {q['seeds']} at {q['leads']:,} leads ({_machine(q['machine'])}); holdout AUC / "
        "log loss, ratio to the ceiling in brackets; before: the ratios (median of seeds 7/8/9) of the baseline "
        "commit 12c7a94:",
        "",
        "| model | all | 0-7 days | 8-30 | 31-90 | 91+ | before (all) |",
        "|---|---|---|---|---|---|---|",
    ]
    for model in med:
        cells = []
        for seg in ("all", "0-7", "8-30", "31-90", "91+"):
            m = med[model].get(seg)
            if not m or m["auc"] != m["auc"]:
                cells.append("-")
                continue
            text = f"{m['auc']:.3f} / {m['log_loss']:.4f}"
            if "auc_ratio" in m:
                text += f" ({m['auc_ratio']:.3f} / {m['log_loss_ratio']:.3f})"
            cells.append(text)
        b = before.get(model, {}).get("all", {})
        cells.append(f"{b['auc_ratio']:.3f} / {b['log_loss_ratio']:.3f}" if "auc_ratio" in b else "-")
        label = QUALITY_LABELS.get(model, f"{model} (champion)" if model == chosen else model)
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return lines


def parse_table(p: dict[str, Any]) -> list[str]:
    lines = [
        f"DAG parse time ({_machine(p['machine'])}), median of {p['repeat']} fresh interpreters:",
        "",
        "| DAG file | DAG file only | with the Airflow import | heavy modules it loads |",
        "|---|---|---|---|",
    ]
    for name, d in p["dags"].items():
        heavy = ", ".join(d["heavy_loaded_by_dag"]) or "none"
        lines.append(f"| {name} | {d['dag_file_median_s']:.3f} s | {d['total_median_s']:.2f} s | {heavy} |")
    return lines


def main(argv: list[str] | None = None) -> int:
    """Print the Markdown section built from the result files; draw the scale curves; ``--readme``: update README."""
    import argparse

    p = argparse.ArgumentParser(prog="report.py", description=__doc__.split("\n")[0])
    p.add_argument(
        "--readme", action="store_true", help="rewrite the README's scale and quality tables from the results"
    )
    a = p.parse_args(argv)
    scale, feats = _load("scale"), _load("features_scale")
    if scale:
        print(f"scale curves: {scale_plot(scale, RESULTS_DIR / 'scale_curves.png', feats).relative_to(ROOT)}")
        if a.readme:
            extra = [e for e in (_load(name) for name in SCALE_RUNS) if e]
            write_readme_scale(scale, ROOT / "README.md", feats, extra)
    out: list[str] = ["## Benchmarks", ""]
    feats = _load("features_scale")
    if feats:
        out += [*features_table(feats), "", f"Summary: {feats['summary']}", ""]
    quality = _load("quality")
    if a.readme and quality:
        write_readme_block(ROOT / "README.md", QUALITY_START, QUALITY_END, quality_table(quality))
    for name, render in (("quality", quality_table), ("scale", scale_table), ("parse_time", parse_table)):
        r = _load(name)
        if r:
            out += [*render(r), "", f"Summary: {r['summary']}", ""]
    print("\n".join(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
