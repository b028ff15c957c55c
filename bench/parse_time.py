"""Parse-time benchmark: how long each DAG file takes to import in a fresh interpreter (goal: under 0.3 s each).

Per DAG file and repetition, a new interpreter imports ``airflow.sdk`` and resolves the names the DAG files use from
it (``DAG``, ``Param``, ``task``, ``Asset``, the cron timetables; airflow.sdk loads them lazily), timed as the Airflow
import: what a DAG processor has paid once already. It then times ``runpy.run_path(dag_file)``: the DAG file's own cost, i.e. its top-level code and
whatever it imports beyond Airflow. The median of the repetitions is reported, with the total including the Airflow
import. Also lists which heavy modules (pandas, numpy, sklearn, lifelines, mlflow, pyarrow, matplotlib) the DAG file
left loaded: any of them means heavy work at parse time.

Usage: ``python bench/parse_time.py [--repeat 5]``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import PYTHON, ROOT, child_env, load_average, write_result

GOAL_S = 0.3
HEAVY = ("pandas", "numpy", "sklearn", "lifelines", "mlflow", "pyarrow", "matplotlib", "scipy", "requests")

_PROBE = r"""
import json, runpy, sys, time
t0 = time.perf_counter()
import airflow.sdk
# airflow.sdk loads its public names lazily: resolve the ones the DAG files use, as a DAG processor has already done
for name in ("DAG", "Param", "task", "Asset", "CronDataIntervalTimetable", "CronTriggerTimetable"):
    getattr(airflow.sdk, name)
t1 = time.perf_counter()
before = set(sys.modules)
runpy.run_path(sys.argv[1], run_name="dag_parse_probe")
t2 = time.perf_counter()
heavy = sorted(m for m in json.loads(sys.argv[2]) if m in sys.modules and m not in before)
print(json.dumps({"airflow_import_s": t1 - t0, "dag_file_s": t2 - t1, "heavy_loaded_by_dag": heavy}))
"""


def measure(dag_file: Path, env: dict[str, str]) -> dict[str, Any]:
    """One fresh-interpreter measurement of ``dag_file``.

    Raises:
        RuntimeError: the file failed to import; the message holds the interpreter's stderr tail.
    """
    proc = subprocess.run(
        [PYTHON, "-c", _PROBE, str(dag_file), json.dumps(HEAVY)], capture_output=True, text=True, env=env, cwd=ROOT
    )
    if proc.returncode != 0:
        raise RuntimeError(f"{dag_file.name} failed to import:\n{proc.stderr[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    """Measure every ``dags/*.py``; write ``bench/results/parse_time.json`` and print the summary line."""
    p = argparse.ArgumentParser(prog="parse_time.py", description=__doc__.split("\n")[0])
    p.add_argument("--repeat", type=int, default=5)
    a = p.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="leadscore-parse-") as tmp:
        env = child_env(
            {
                "AIRFLOW_HOME": os.environ.get("BENCH_AIRFLOW_HOME", str(Path(tmp) / "airflow")),
                "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"),
                "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            }
        )
        dags: dict[str, Any] = {}
        for dag_file in sorted((ROOT / "dags").glob("*.py")):
            if dag_file.name.startswith("_"):
                continue
            measure(dag_file, env)  # warm the OS file cache and .pyc files: the scheduler parses warm too
            runs = [measure(dag_file, env) for _ in range(a.repeat)]
            dag_s = statistics.median(r["dag_file_s"] for r in runs)
            total = statistics.median(r["airflow_import_s"] + r["dag_file_s"] for r in runs)
            dags[dag_file.name] = {
                "dag_file_median_s": round(dag_s, 3),
                "dag_file_runs_s": [round(r["dag_file_s"], 3) for r in runs],
                "airflow_import_median_s": round(statistics.median(r["airflow_import_s"] for r in runs), 3),
                "total_median_s": round(total, 3),
                "heavy_loaded_by_dag": runs[-1]["heavy_loaded_by_dag"],
                "meets_goal": dag_s < GOAL_S,
                "load_average": load_average(),
            }
    worst = max(dags.items(), key=lambda kv: kv[1]["dag_file_median_s"])
    summary = (
        f"{len(dags)} DAG files: "
        + ", ".join(f"{k} {v['dag_file_median_s']:.3f} s" for k, v in dags.items())
        + f" (goal < {GOAL_S} s each; worst {worst[0]}; with the airflow.sdk import "
        f"{max(v['total_median_s'] for v in dags.values()):.2f} s); load {load_average()[0]}"
    )
    write_result(
        "parse_time",
        {
            "method": __doc__,
            "goal_s": GOAL_S,
            "repeat": a.repeat,
            "dags": dags,
            "all_meet_goal": all(v["meets_goal"] for v in dags.values()),
        },
        summary,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
