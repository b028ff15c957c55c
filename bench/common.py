"""Shared helpers of the benchmarks: machine facts, result files, per-step subprocesses and a sandbox server process.

Every benchmark writes one JSON file under ``bench/results/`` and prints one summary line. Steps whose peak memory
matters run in a fresh interpreter (``run_step``) so that the kernel's peak-RSS mark is the step's own.
"""

from __future__ import annotations

import json
import os
import platform
import re
import resource
import signal
import socket
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS_DIR = ROOT / "bench" / "results"
# The full configuration's results are committed (they back the README's tables); the small one's are not.
FULL_RESULTS_DIR = RESULTS_DIR / "full"
PYTHON = sys.executable


class BenchError(RuntimeError):
    """A benchmark step failed; the message names the step and where its log is."""


def full_mode() -> bool:
    """True when ``BENCH_FULL=1`` asks for the full configuration (all sizes, all seeds)."""
    return os.environ.get("BENCH_FULL", "") not in ("", "0", "false", "False")


def load_average() -> list[float]:
    """The 1/5/15-minute load averages (the machine is shared: every figure is recorded with them)."""
    return [round(x, 2) for x in os.getloadavg()]


def machine() -> dict[str, Any]:
    """Date, cores, memory, CPU model, Python and load average of the machine running the benchmark."""
    mem_kb = 0
    with open("/proc/meminfo") as fh:
        for line in fh:
            if line.startswith("MemTotal:"):
                mem_kb = int(line.split()[1])
    cpu = platform.processor() or ""
    try:
        with open("/proc/cpuinfo") as fh:
            cpu = next((ln.split(":", 1)[1].strip() for ln in fh if ln.startswith("model name")), cpu)
    except OSError:
        pass
    return {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "cores": os.cpu_count(),
        "memory_gib": round(mem_kb / 2**20, 1),
        "cpu": cpu,
        "python": platform.python_version(),
        "load_average": load_average(),
    }


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far, in MiB (Linux ``ru_maxrss`` is in KiB)."""
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def proc_peak_rss_mb(pid: int) -> float | None:
    """Peak resident memory (VmHWM) of another running process, in MiB; None when it is gone."""
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        return None
    return None


def write_result(name: str, result: dict[str, Any], summary: str) -> Path:
    """Write ``bench/results/<name>.json`` (with the machine facts) and print the one-line summary.

    Under ``BENCH_FULL=1`` the same JSON also goes to ``bench/results/full/<name>.json``, the committed results that
    ``bench/report.py`` renders into the README.

    Returns:
        The path written (the full one under ``BENCH_FULL=1``).
    """
    payload = {"benchmark": name, "machine": machine(), "summary": summary, **result}
    text = json.dumps(payload, indent=2, default=str) + "\n"
    for folder in (RESULTS_DIR, *([FULL_RESULTS_DIR] if full_mode() else [])):
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{name}.json"
        path.write_text(text)
    print(f"{name}: {summary}  -> {path.relative_to(ROOT)}", flush=True)
    return path


def child_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """Environment of a benchmark subprocess: PYTHONPATH with include/ and bench/, quiet matplotlib."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT / "include"), str(ROOT), env.get("PYTHONPATH", "")]))
    env.setdefault("MPLBACKEND", "Agg")
    env.update(extra or {})
    return env


def run_step(argv: list[str], log_path: Path, timeout: float, env: dict[str, str] | None = None) -> dict[str, Any]:
    """Run one measured step in a fresh interpreter; returns the JSON object its last stdout line holds.

    The child prints ``{"...": ...}`` as its last line (its own wall time and peak RSS). Adds the wall time seen
    from outside (including interpreter start and imports) and the load average after the step.

    Raises:
        BenchError: the step exited non-zero, timed out or printed no JSON; the message names the log.
    """
    log_path.parent.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    with open(log_path, "w") as log:
        try:
            proc = subprocess.run(
                [PYTHON, *argv], stdout=subprocess.PIPE, stderr=log, env=env or child_env(), timeout=timeout, text=True
            )
        except subprocess.TimeoutExpired:
            raise BenchError(f"step {argv} timed out after {timeout:.0f} s; log: {log_path}") from None
    outside = time.perf_counter() - started
    with open(log_path, "a") as log:
        log.write("\n--- stdout ---\n" + proc.stdout)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if proc.returncode != 0 or not lines:
        tail = "\n".join(log_path.read_text(errors="replace").splitlines()[-15:])
        raise BenchError(f"step {argv} failed (exit {proc.returncode}); log: {log_path}\n{tail}")
    out = json.loads(lines[-1])
    out["process_wall_s"] = round(outside, 2)
    out["load_average_after"] = load_average()
    return out


def free_port() -> int:
    """A free TCP port on 127.0.0.1."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class SandboxServer:
    """The sandbox Slate (web service + SFTP) served by a separate process, so its memory is not the client's.

    Started with ``python bench/serve_sandbox.py DIR WEB_PORT SFTP_PORT`` (no background importer: delivered files
    stay where the delivery put them); ``sftp_only`` serves SFTP alone (the delivery's server, without the tables). ``connections`` holds the ``AIRFLOW_CONN_SLATE_*`` JSON strings it printed.
    """

    def __init__(self, data_dir: Path, log_path: Path, timeout: float = 900.0, sftp_only: bool = False) -> None:
        self.data_dir = data_dir
        self.log_path = log_path
        self.web_port, self.sftp_port = free_port(), free_port()
        log_path.parent.mkdir(parents=True, exist_ok=True)
        started = time.perf_counter()
        self._log = open(log_path, "w")  # noqa: SIM115 (kept open for the server's lifetime)
        self.proc = subprocess.Popen(
            [
                PYTHON,
                str(ROOT / "bench" / "serve_sandbox.py"),
                str(data_dir),
                str(self.web_port),
                str(self.sftp_port),
                *(["--sftp-only"] if sftp_only else []),
            ],
            stdout=subprocess.PIPE,
            stderr=self._log,
            env=child_env(),
            text=True,
        )
        self.connections: dict[str, str] = {}
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            m = re.match(r"^(AIRFLOW_CONN_SLATE_(?:API|SFTP))='(.*)'$", line.strip())
            if m:
                self.connections[m.group(1)] = m.group(2)
            if len(self.connections) == 2:
                break
            if time.perf_counter() - started > timeout:
                break
        if len(self.connections) != 2:
            self.stop()
            raise BenchError(f"sandbox server over {data_dir} did not start; log: {log_path}")
        self.start_seconds = round(time.perf_counter() - started, 2)

    def peak_rss_mb(self) -> float | None:
        """The server process's peak RSS so far (MiB)."""
        return proc_peak_rss_mb(self.proc.pid)

    def stop(self) -> None:
        """Stop the server process (SIGTERM, then SIGKILL after 30 s)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()

    def __enter__(self) -> SandboxServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def api_config_from_env() -> Any:
    """The web-service client configuration from ``AIRFLOW_CONN_SLATE_API`` (JSON), without importing Airflow."""
    from leadscore.slate.connections import api_config_from_connection

    conn = json.loads(os.environ["AIRFLOW_CONN_SLATE_API"])
    return api_config_from_connection(
        conn_type=conn.get("conn_type"),
        host=conn.get("host"),
        port=conn.get("port"),
        schema=conn.get("schema"),
        login=conn.get("login"),
        password=conn.get("password"),
        extra=conn.get("extra"),
    )


class DirectClient:
    """Answers ``fetch_all`` from the sandbox's own query tables in-process: the extract without HTTP and JSON.

    The rows, columns and string values are exactly what the web service would page out over ``[since, until)``
    (the same ``QueryTable.page``), so validate/clean/store see the same input as through HTTP.
    """

    def __init__(self, data_dir: Path) -> None:
        import pandas as pd

        from leadscore.sandbox.webservice import build_tables

        self.tables = build_tables(
            pd.read_parquet(data_dir / "leads.parquet"), pd.read_parquet(data_dir / "interactions.parquet")
        )

    @staticmethod
    def _utc_only(timezone: str) -> None:
        if timezone not in ("UTC", "Etc/UTC"):
            raise BenchError(f"DirectClient serves tables built in UTC, not {timezone}; unset LEADSCORE_SLATE_TIMEZONE")

    def fetch_all(self, spec: Any, since: Any, until: Any, page_size: int = 0, timezone: str = "UTC") -> Any:
        import numpy as np
        import pandas as pd
        import pyarrow as pa

        from leadscore.slate.client import FetchResult

        self._utc_only(timezone)
        started = time.monotonic()
        table = self.tables[spec.name]
        since_us = np.iinfo(np.int64).min + 1 if since is None else int(pd.Timestamp(since).value // 1000)
        until_us = int(pd.Timestamp(until).value // 1000)
        page = table.page(since_us, until_us, None, max(1, len(table)))
        frame = pa.table(dict(zip(page.columns, page.values, strict=True))).to_pandas()
        frame = frame.reindex(columns=[*spec.column_names, *[c for c in frame.columns if c not in spec.column_names]])
        frame = frame.astype("str")
        return FetchResult(spec.name, frame, 1, len(frame), 0, time.monotonic() - started)

    def fetch_pages(self, spec: Any, since: Any, until: Any, page_size: int = 10_000, timezone: str = "UTC") -> Any:
        """Yield ``slate.client.Page`` objects of at most ``page_size`` rows (dicts of strings, NULLs as None)."""
        import numpy as np
        import pandas as pd
        import pyarrow as pa

        from leadscore.slate.client import Page

        self._utc_only(timezone)
        table = self.tables[spec.name]
        since_us = np.iinfo(np.int64).min + 1 if since is None else int(pd.Timestamp(since).value // 1000)
        until_us = int(pd.Timestamp(until).value // 1000)
        page = table.page(since_us, until_us, None, max(1, len(table)))
        whole = pa.table(dict(zip(page.columns, page.values, strict=True)))
        key = spec.key
        for number, start in enumerate(range(0, max(whole.num_rows, 1), page_size), 1):
            started = time.monotonic()
            rows = [{k: v for k, v in r.items() if v is not None} for r in whole.slice(start, page_size).to_pylist()]
            yield Page(
                query=spec.name,
                number=number,
                rows=rows,
                columns=tuple(page.columns),
                after=None,
                last_key=rows[-1].get(key) if rows else None,
                retries=0,
                seconds=time.monotonic() - started,
            )
