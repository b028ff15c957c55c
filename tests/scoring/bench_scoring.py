"""Measure seconds and peak memory to score and write the files of N leads, and to deliver them to the sandbox SFTP.

Not a test (pytest does not collect it). Each measurement runs in a fresh process so that ``ru_maxrss`` is its own:

    cd /work/main && PYTHONPATH=include:. .venv/bin/python -m tests.scoring.bench_scoring score 100000
    cd /work/main && PYTHONPATH=include:. .venv/bin/python -m tests.scoring.bench_scoring deliver 1000000

Scoring uses the dummy LeadModel-like model of ``tests.scoring.fakes`` (the real model's predict cost is not
included). Delivery runs the sandbox SFTP server in the same process, so its memory is included.
"""

from __future__ import annotations

import json
import os
import resource
import sys
import tempfile
import time
from datetime import date, datetime
from pathlib import Path

DAY = date(2026, 11, 22)


def rss_mb() -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def peak_mb() -> float:
    """Peak RSS since the process started or since the last ``reset_peak``."""
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def reset_peak() -> None:
    """Reset the kernel's peak-RSS mark (Linux: writing 5 to /proc/self/clear_refs)."""
    with open("/proc/self/clear_refs", "w") as fh:
        fh.write("5")


def bench_score(n: int, work: Path) -> dict[str, float]:
    from leadscore.scoring.files import write_score_files
    from leadscore.scoring.score import score_leads
    from leadscore.settings import Settings
    from tests.scoring.fakes import DummyModel, make_features

    features = make_features(n, seed=1)
    base = rss_mb()
    t0, c0 = time.perf_counter(), time.process_time()
    scores = score_leads(DummyModel(), features, "1", DAY, Settings())
    t1, c1 = time.perf_counter(), time.process_time()
    manifest = write_score_files(scores, work / "scores", DAY, 10_000, 5_000_000)
    t2, c2 = time.perf_counter(), time.process_time()
    return {
        "leads": n,
        "score_s": round(t1 - t0, 2),
        "score_cpu_s": round(c1 - c0, 2),
        "write_s": round(t2 - t1, 2),
        "write_cpu_s": round(c2 - c1, 2),
        "chunks": len(manifest.files),
        "mb_written": round(manifest.bytes / 1e6, 1),
        "rss_before_mb": round(base),
        "peak_rss_mb": round(peak_mb()),
    }


def bench_deliver(n: int, work: Path) -> dict[str, float]:
    from leadscore.sandbox.serve import start_sandbox
    from leadscore.scoring.files import write_score_files
    from leadscore.scoring.score import score_leads
    from leadscore.settings import Settings
    from leadscore.slate.delivery import deliver
    from tests.fixtures_sandbox import write_sandbox_dir
    from tests.scoring.fakes import DummyModel, make_features

    manifest = write_score_files(
        score_leads(DummyModel(), make_features(n, seed=1), "1", DAY, Settings()),
        work / "scores",
        DAY,
        10_000,
        5_000_000,
    )
    data_dir = write_sandbox_dir(work / "sandbox", 200, 1, datetime(2026, 11, 23))
    with start_sandbox(data_dir) as sandbox:
        conn = json.loads(sandbox.connection_uris()["AIRFLOW_CONN_SLATE_SFTP"])
        if " " not in conn["extra"]["host_key"].strip():
            conn["extra"]["host_key"] = sandbox.host_key_line
        os.environ["AIRFLOW_CONN_SLATE_SFTP"] = json.dumps(conn)
        from airflow.providers.sftp.hooks.sftp import SFTPHook  # noqa: F401  (import time is not delivery time)

        base = rss_mb()
        reset_peak()  # the peak of writing the files before is not delivery's
        t0, c0 = time.perf_counter(), time.process_time()
        report = deliver(manifest, Settings().replace(home=work / "home"), backoff_seconds=0.1)
        elapsed, cpu = time.perf_counter() - t0, time.process_time() - c0
        remote = sorted(p.name for p in (sandbox.paths.sftp_root / "incoming/lead_scores").iterdir())
    assert report.sent == len(manifest.files) and len(remote) == len(manifest.files), (report, remote[:3])
    return {
        "leads": n,
        "chunks": report.sent,
        "mb_sent": round(report.bytes / 1e6, 1),
        "deliver_s": round(elapsed, 2),
        "deliver_cpu_s_incl_server": round(cpu, 2),
        "rss_before_mb": round(base),
        "peak_rss_mb": round(peak_mb()),
    }


def main(argv: list[str]) -> int:
    what, n = argv[0], int(argv[1])
    with tempfile.TemporaryDirectory(prefix="leadscore-bench-") as tmp:
        os.environ.setdefault("AIRFLOW_HOME", str(Path(tmp) / "airflow"))
        result = (bench_score if what == "score" else bench_deliver)(n, Path(tmp))
    print(json.dumps({"what": what, **result}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
