"""Running LeadScore on one machine: Airflow subprocesses on embedded defaults, backfill, the UIs, and the DAG steps
without Airflow.

Airflow runs with its SQLite metadata database under ``LEADSCORE_HOME/airflow``; connections come from the process
environment (``AIRFLOW_CONN_*``, e.g. from ``.env``) or, when none is configured, from a sandbox Slate started here.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import date, datetime
from pathlib import Path

from leadscore.intervals import Interval, week_ending_on_or_before, weeks_between
from leadscore.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
CONN_VARS = ("AIRFLOW_CONN_SLATE_API", "AIRFLOW_CONN_SLATE_SFTP")


class AirflowRunError(RuntimeError):
    """An Airflow subprocess failed; the message names the DAG, the date and the log file."""


def read_dotenv(path: Path) -> dict[str, str]:
    """Parse a ``.env`` file (KEY=value lines, shell quoting, # comments); missing file -> {}."""
    if not path.exists():
        return {}
    out: dict[str, str] = {}
    for lineno, line in enumerate(path.read_text().splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition("=")
        if not sep:
            raise ValueError(f"{path}:{lineno}: expected KEY=value")
        parts = shlex.split(value, posix=True)
        out[key.strip()] = parts[0] if parts else ""
    return out


def airflow_env(settings: Settings, connections: dict[str, str] | None = None) -> dict[str, str]:
    """Environment for Airflow subprocesses: embedded defaults under LEADSCORE_HOME plus the given connections."""
    env = dict(os.environ)
    env.update(read_dotenv(ROOT / ".env"))
    env.update(connections or {})
    env.update(
        {
            "LEADSCORE_HOME": str(settings.home_abs),
            "AIRFLOW_HOME": env.get("AIRFLOW_HOME") or str(settings.airflow_home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"),
            "AIRFLOW__CORE__PLUGINS_FOLDER": str(ROOT / "plugins"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__API__HOST": env.get("AIRFLOW__API__HOST", "127.0.0.1"),
            "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT / "include"), env.get("PYTHONPATH", "")])),
            "MPLBACKEND": "Agg",
            # `airflow standalone` starts its components as `airflow ...` subprocesses: find this venv's first
            "PATH": os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")]),
        }
    )
    return env


def airflow_bin() -> str:
    """The `airflow` executable of this interpreter's environment."""
    return str(Path(sys.executable).with_name("airflow"))


def ensure_airflow_db(env: dict[str, str], log_dir: Path) -> None:
    """Create or upgrade Airflow's metadata database (idempotent, ~8 s the first time)."""
    marker = Path(env["AIRFLOW_HOME"]) / ".leadscore-db-migrated"
    if marker.exists():
        return
    _run([airflow_bin(), "db", "migrate"], env, log_dir / "airflow-db-migrate.log", "airflow db migrate")
    marker.touch()


def dags_test(
    dag_id: str, logical_date: datetime | date, env: dict[str, str], log_dir: Path, conf: dict | None = None
) -> float:
    """Run one DAG run in-process with `airflow dags test` (no scheduler needed); returns seconds.

    For the weekly DAGs pass the week's END: Airflow infers a manual run's data interval as the one that ended at
    its date, so `dags test lead_data 2026-11-23` processes [2026-11-16, 2026-11-23).

    Raises:
        AirflowRunError: the run failed; the message names the log file holding Airflow's output.
    """
    import json

    stamp = logical_date.strftime("%Y-%m-%d")
    cmd = [airflow_bin(), "dags", "test", dag_id, stamp]
    if conf:
        cmd += ["--conf", json.dumps(conf)]
    log = log_dir / f"{dag_id}-{stamp}.log"
    started = time.monotonic()
    _run(cmd, env, log, f"{dag_id} for {stamp}")
    text = log.read_text(errors="replace")
    if "DagRunState.FAILED" in text or ("state=failed" in text.lower() and "dagrun" in text.lower()):
        raise AirflowRunError(f"{dag_id} for {stamp} failed; see {log}")
    return time.monotonic() - started


def require_champion(settings: Settings) -> None:
    """Fail fast before an inference run that would only wait: `lead_inference` waits for a champion, and an
    in-process `dags test` run would wait for one as long as the sensor's timeout.

    Raises:
        AirflowRunError: no model version has the `champion` alias.
    """
    from leadscore.model.registry import has_champion

    if not has_champion(settings):
        raise AirflowRunError(
            f"no {settings.model_name}@champion in {settings.tracking_uri}: run lead_training first "
            "(`python -m leadscore train`, or trigger lead_training in the Airflow UI); if it ran, its gate refused "
            "the model (see its report_gate task)"
        )


def _run(cmd: list[str], env: dict[str, str], log: Path, what: str) -> None:
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "w") as fh:
        proc = subprocess.run(cmd, env=env, stdout=fh, stderr=subprocess.STDOUT, cwd=ROOT, check=False)
    if proc.returncode != 0:
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-25:])
        raise AirflowRunError(f"{what} failed (exit {proc.returncode}); full log: {log}\n{tail}")


@contextlib.contextmanager
def slate_connections(
    settings: Settings, web_port: int = 0, sftp_port: int = 0
) -> Iterator[tuple[dict[str, str], object]]:
    """Yield (connection env vars, sandbox handle or None).

    When the environment or ``.env`` configures both Slate connections, they are used as they are; otherwise the
    sandbox Slate under LEADSCORE_HOME/sandbox is generated if needed and served on 127.0.0.1 for the duration.
    """
    configured = {**read_dotenv(ROOT / ".env"), **os.environ}
    if all(configured.get(v) for v in CONN_VARS):
        yield {v: configured[v] for v in CONN_VARS}, None
        return
    from leadscore.sandbox.commands import ensure_generated
    from leadscore.sandbox.serve import start_sandbox

    ensure_generated(settings.sandbox_dir, settings.sandbox_leads, settings.sandbox_seed)
    with start_sandbox(
        settings.sandbox_dir,
        web_port=web_port,
        sftp_port=sftp_port,
        key_order=settings.sandbox_key_order,
        timezone=settings.sandbox_zone,
    ) as handle:
        yield handle.connection_uris(), handle


def backfill(settings: Settings, first: date, last: date, dry_run: bool = False) -> int:
    """Run `lead_data` then `lead_inference` for every week starting in [first, last], in order, with no scheduler.

    Each week is a real Airflow DAG run (`airflow dags test`) with that week's data interval, so its files carry that
    week's date and the scores it would have had. Stops at the first failing week (later weeks depend on it).
    """
    weeks = weeks_between(first, last)
    log_dir = settings.home_abs / "logs" / "backfill"
    with slate_connections(settings) as (conns, sandbox):
        env = airflow_env(settings, conns)
        # Airflow runs no task for a date before the DAG's start_date: a backfill asks for these weeks explicitly
        env["LEADSCORE_START_DATE"] = min(settings.start_date, weeks[0].start.date().isoformat())
        ensure_airflow_db(env, log_dir)
        require_champion(settings)
        for i, week in enumerate(weeks, 1):
            print(f"[{i}/{len(weeks)}] week {week.start:%Y-%m-%d} -> {week.end:%Y-%m-%d}", flush=True)
            secs = dags_test("lead_data", week.end, env, log_dir)
            print(f"    lead_data       ok ({secs:.0f} s)", flush=True)
            secs = dags_test("lead_inference", week.end, env, log_dir, conf={"dry_run": dry_run})
            print(f"    lead_inference  ok ({secs:.0f} s)", flush=True)
            if sandbox is not None:
                sandbox.importer.poll()
    print(f"backfilled {len(weeks)} week(s); logs in {log_dir}")
    return 0


def api_server_env(port: int, host: str = "127.0.0.1") -> dict[str, str]:
    """The settings that tie Airflow's components to an api-server on ``host:port``.

    Tasks report to the execution API at ``[core] execution_api_server_url`` (default port 8080): it must follow the
    api-server's port, or every task on another port is killed."""
    return {
        "AIRFLOW__API__PORT": str(port),
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://{host}:{port}/execution/",
    }


def airflow_standalone(
    settings: Settings, port: int = 8080, sandbox_web_port: int = 18080, sandbox_sftp_port: int = 18022
) -> int:
    """`airflow standalone` on 127.0.0.1:``port`` with the three DAGs and the Slate connections.

    Ctrl-C or SIGTERM stops every process it started (Airflow's components, their workers and tasks, the sandbox)."""
    from leadscore.processes import sigterm_as_keyboard_interrupt, stop_tree

    with (
        sigterm_as_keyboard_interrupt(),
        slate_connections(settings, web_port=sandbox_web_port, sftp_port=sandbox_sftp_port) as (conns, sandbox),
    ):
        env = airflow_env(settings, conns)
        env.update(api_server_env(port, env["AIRFLOW__API__HOST"]))
        env["AIRFLOW__CORE__EXECUTOR"] = "LocalExecutor"
        env.setdefault("AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS", "False")
        # The scheduler's and triggerer's log servers default to fixed ports (8793/8794) on every interface; one
        # machine reads its logs from disk, so any free port will do and two `make airflow` never collide.
        env.setdefault("AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT", str(_free_port()))
        env.setdefault("AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT", str(_free_port()))
        proc = None
        try:
            ensure_airflow_db(env, settings.home_abs / "logs")
            if sandbox is not None:
                sandbox.importer.start(60.0)
                print(f"sandbox Slate: web service {sandbox.web_url}, SFTP 127.0.0.1:{sandbox.sftp_port}", flush=True)
            pw_file = Path(env["AIRFLOW_HOME"]) / "simple_auth_manager_passwords.json.generated"
            print(
                f"Airflow UI: http://127.0.0.1:{port}  (login: admin, password in {pw_file} once it starts)", flush=True
            )
            proc = subprocess.Popen([airflow_bin(), "standalone"], env=env, cwd=ROOT, start_new_session=True)
            return proc.wait()
        except KeyboardInterrupt:
            print("stopping Airflow ...", flush=True)
            return 0
        finally:
            if proc is not None:
                stop_tree(proc)


def mlflow_ui(settings: Settings, port: int = 5000) -> int:
    """The MLflow UI on LeadScore's tracking store, bound to 127.0.0.1; stops on Ctrl-C or SIGTERM."""
    from leadscore.processes import sigterm_as_keyboard_interrupt

    (settings.home_abs / "mlflow").mkdir(parents=True, exist_ok=True)
    cmd = [
        str(Path(sys.executable).with_name("mlflow")),
        "server",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--backend-store-uri",
        settings.tracking_uri,
        "--default-artifact-root",
        settings.artifact_location or "./mlartifacts",
        "--workers",
        "1",  # one analyst, one browser: one worker starts and stops faster
    ]
    print(f"MLflow UI: http://127.0.0.1:{port}  (store {settings.tracking_uri})")
    with sigterm_as_keyboard_interrupt():
        proc = subprocess.Popen(cmd, cwd=ROOT, start_new_session=True)
        try:
            return proc.wait()
        except KeyboardInterrupt:
            return _stop(proc)


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _stop(proc: subprocess.Popen) -> int:
    from leadscore.processes import stop_tree

    stop_tree(proc)
    return 0


def _week(week_ending: date | None) -> Interval:
    moment = datetime.combine(week_ending, datetime.min.time()) if week_ending else datetime.now()
    return week_ending_on_or_before(moment)


def extract(settings: Settings, week_ending: date | None) -> int:
    """`lead_data` for one week without Airflow (connection from AIRFLOW_CONN_SLATE_API or the sandbox)."""
    from leadscore.tasks.data import extract_week, log_quality

    interval = _week(week_ending)
    with slate_connections(settings) as (conns, _):
        os.environ.update(conns)
        from leadscore.airflow_adapter import slate_api_config

        log_quality(extract_week(settings, interval, slate_api_config()))
    return 0


def train(settings: Settings, as_of: date | None) -> int:
    """`lead_training` without Airflow, as of a date (default: the latest extract's end)."""
    from leadscore.tasks.training import build_training_set, report_gate, train_and_register

    built = build_training_set(settings, as_of=as_of.isoformat() if as_of else None)
    report_gate(train_and_register(settings, built))
    return 0


def score(settings: Settings, week_ending: date | None, dry_run: bool = False) -> int:
    """`lead_inference` for one week without Airflow."""
    from leadscore.tasks.inference import deliver_week, monitor_week, score_week

    interval = _week(week_ending)
    with slate_connections(settings) as (conns, _):
        os.environ.update(conns)
        scored = score_week(settings, interval)
        delivered = deliver_week(settings, scored, dry_run=dry_run)
        monitor_week(settings, interval, delivered)
    return 0


def deliver(settings: Settings, week_ending: date | None) -> int:
    """`lead_inference`'s delivery step alone: push the week's existing score files; prints the delivery summary.

    Raises:
        FileNotFoundError: the week has no score files (run `score` first).
    """
    import json

    from leadscore.scoring.files import date_key
    from leadscore.tasks.inference import deliver_week

    interval = _week(week_ending)
    manifest = settings.scores_dir / date_key(interval.end_date) / "manifest.json"
    if not manifest.is_file():
        raise FileNotFoundError(
            f"no score files for the week ending {interval.end_date}: {manifest}; run `score` first"
        )
    scored = {"manifest": str(manifest), "scored_on": interval.end_date.isoformat(), "key": interval.key}
    with slate_connections(settings) as (conns, _):
        os.environ.update(conns)
        print(json.dumps(deliver_week(settings, scored), default=str))
    return 0
