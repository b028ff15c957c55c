"""Render the README's benchmark tables (Markdown) from the JSON files in ``bench/results/``.

Usage: ``python bench/report.py`` prints the section; paste it into README.md after a full run.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import RESULTS_DIR

STEP_LABELS = {
    "generate": "generate the sandbox",
    "extract_full": "full-history extract (HTTP web service)",
    "bulk_load": "full-history extract, in-process (no HTTP)",
    "extract_week": "weekly incremental extract (HTTP)",
    "training_set": "build the training set",
    "training": "training (3 candidates, MLflow, gate)",
    "scoring": "scoring all open leads + files",
    "delivery": "SFTP delivery",
    "weekly_scoring_plus_delivery": "**weekly scoring + delivery**",
}


def _load(name: str) -> dict[str, Any] | None:
    path = RESULTS_DIR / f"{name}.json"
    return json.loads(path.read_text()) if path.exists() else None


def _machine(m: dict[str, Any]) -> str:
    la = m["load_average"]
    return f"{m['date']}, {m['cores']} cores, {m['memory_gib']} GiB, {m['cpu']}, load {la[0]}/{la[1]}/{la[2]}"


def _cell(step: dict[str, Any] | None) -> str:
    if not step:
        return "-"
    if "skipped" in step:
        return "skipped"
    return f"{step['wall_s']:.1f} s / {step['peak_rss_mib'] / 1024:.2f} GiB"


def scale_table(r: dict[str, Any]) -> list[str]:
    sizes = sorted(r["sizes"], key=int)
    lines = [
        f"Scale ({_machine(r['machine'])}); wall time after imports / peak RSS of the step's own process:",
        "",
        "| step | " + " | ".join(f"{int(n):,} leads" for n in sizes) + " | growth (time exponent k, t ~ n^k) |",
        "|---|" + "---|" * len(sizes) + "---|",
    ]
    growth = r.get("growth", {}).get("steps", {})
    for key, label in STEP_LABELS.items():
        if not any(key in r["sizes"][n] for n in sizes):
            continue
        g = growth.get(key)
        lines.append(
            f"| {label} | "
            + " | ".join(_cell(r["sizes"][n].get(key)) for n in sizes)
            + f" | {g['time_exponent'] if g else '-'} |"
        )
    http = {100_000: r.get("extract_full_remeasured_100k")}
    for n, key in ((300_000, "http_extract_300k"), (1_000_000, "http_extract_1m")):
        if r.get(key) and "extract_full" in r[key]:
            http[n] = r[key]["extract_full"]
    if http[100_000]:
        lines.append(
            "| full-history extract (HTTP, streamed interactions, re-run) | "
            + "; ".join(f"{n:,}: {_cell(m)}" for n, m in http.items() if m)
            + " | | |"
        )
    ext = r.get("extract_full_extrapolated")
    if ext:
        lines.append(
            f"| full-history extract (HTTP), extrapolated to {ext['to_leads']:,} | | "
            f"~{ext['wall_s']:.0f} s / ~{ext['peak_rss_mib'] / 1024:.1f} GiB | linear |"
        )
    tex = r.get("training_extrapolated")
    if tex:
        lines.append(f"| training, extrapolated to {tex['to_leads']:,} | | ~{tex['wall_s']:.0f} s | {tex['method']} |")
    return lines


def quality_table(q: dict[str, Any]) -> list[str]:
    med = q["median_over_seeds"]
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
        lines.append(f"| {model} | " + " | ".join(cells) + " |")
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


def main() -> int:
    """Print the Markdown section built from whichever result files exist."""
    out: list[str] = ["## Benchmarks", ""]
    for name, render in (("quality", quality_table), ("scale", scale_table), ("parse_time", parse_table)):
        r = _load(name)
        if r:
            out += [*render(r), "", f"Summary: {r['summary']}", ""]
    print("\n".join(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
