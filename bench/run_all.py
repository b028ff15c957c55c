"""Run every benchmark (``make bench``): parse time, model quality against the ceiling, speed and memory at scale.

Default: a small configuration that finishes in a few minutes on 2 cores (quality at 1 seed, scale at 100,000
leads). ``BENCH_FULL=1 make bench``: the full one (quality at 3 seeds plus the anticipation check, scale at 100,000,
1,000,000 leads (add 300,000 with `python bench/scale.py --leads ...`) with the slowest steps profiled by pyinstrument when it is installed; about an hour).
Each benchmark runs as its own process, writes ``bench/results/<name>.json`` and prints one summary line; a failing
benchmark does not stop the others, and the exit code is non-zero when any failed.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import PYTHON, ROOT, child_env, full_mode, load_average, machine


def plan(full: bool) -> list[tuple[str, list[str]]]:
    """The benchmark command lines of the small or the full configuration."""
    bench = ROOT / "bench"
    if not full:
        return [
            ("parse_time", [str(bench / "parse_time.py"), "--repeat", "5"]),
            ("quality", [str(bench / "quality.py"), "--seeds", "7", "--no-anticipation-check"]),
            ("scale", [str(bench / "scale.py"), "--leads", "100000"]),
        ]
    profile = ["--profile", "training", "scoring", "delivery"] if importlib.util.find_spec("pyinstrument") else []
    return [
        ("parse_time", [str(bench / "parse_time.py"), "--repeat", "5"]),
        ("quality", [str(bench / "quality.py"), "--seeds", "7", "8", "9"]),
        ("scale", [str(bench / "scale.py"), "--leads", "100000", "1000000", *profile]),
    ]


def main() -> int:
    """Run the plan in order; returns 0 when every benchmark succeeded."""
    full = full_mode()
    m = machine()
    print(
        f"bench ({'full' if full else 'small'}; BENCH_FULL=1 for the full run) on {m['cores']} cores, "
        f"{m['memory_gib']} GiB, load {m['load_average']}",
        flush=True,
    )
    failed = []
    for name, argv in plan(full):
        started = time.perf_counter()
        proc = subprocess.run([PYTHON, *argv], env=child_env(), cwd=ROOT)
        took = time.perf_counter() - started
        if proc.returncode != 0:
            failed.append(name)
            print(f"{name}: FAILED (exit {proc.returncode}) after {took:.0f} s", flush=True)
        else:
            print(f"{name}: done in {took:.0f} s, load {load_average()[0]}", flush=True)
    if failed:
        print(f"failed: {', '.join(failed)}", flush=True)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
