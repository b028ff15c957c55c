"""The team stack of docker-compose.yaml as processes on 127.0.0.1, once per test session.

PostgreSQL (the machine's server on 127.0.0.1:5432, user postgres, trust auth) holds a fresh metadata database and a
fresh MLflow database per session, dropped at the end; Redis (127.0.0.1:6379) is the Celery broker. The services'
commands and environment come from docker-compose.yaml (``compose_stack``); what a user would put in ``.env`` comes
from ``env_file`` below: the sandbox's connections, a small sandbox and shorter intervals, all settings a user has.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shlex
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.stack import compose_stack
from tests.stack.harness import (
    ApiClient,
    Component,
    Stack,
    StackError,
    environ_without_airflow,
    free_port,
    port_open,
    run_checked,
)

ROOT = compose_stack.ROOT
PG_HOST, PG_PORT, PG_USER = "127.0.0.1", 5432, "postgres"
REDIS_PORT = 6379
SANDBOX_LEADS = 6_000
CATCHUP_WEEKS = 3
AIRFLOW_SERVICES = ("airflow-apiserver", "airflow-dag-processor", "airflow-scheduler", "airflow-triggerer")
DAG_IDS = ("lead_data", "lead_training", "lead_inference")


def last_monday(now: datetime) -> datetime:
    """The most recent Monday 00:00 UTC at or before ``now``: the end of the latest week a weekly DAG has run."""
    day = datetime(now.year, now.month, now.day)
    return day - timedelta(days=day.weekday())


@dataclass
class StackRun:
    """The running stack and what the tests need to drive and inspect it."""

    stack: Stack
    api: ApiClient
    local: compose_stack.Local
    variables: dict[str, str]
    env_file: dict[str, str]
    airflow_home: Path
    home: Path  # LEADSCORE_HOME of the Airflow services
    sandbox_dir: Path
    start_date: datetime
    week_ends: list[datetime]
    alerts: Path
    extra: dict[str, Any] = field(default_factory=dict)

    def airflow_env(
        self, service: str = "airflow-scheduler", variables: dict[str, str] | None = None
    ) -> dict[str, str]:
        """The environment of an Airflow service (also what the tests' `airflow ...` CLI calls use)."""
        config = compose_stack.load({**self.variables, **(variables or {})})
        return airflow_service_env(config, service, self.local, self.env_file, self.airflow_home)

    def airflow_cli(self, *args: str, timeout: float = 120) -> str:
        argv = [str(Path(sys.executable).with_name("airflow")), *args]
        return run_checked(
            argv, self.airflow_env(), self.local.root, self.local.root / "logs" / "cli.log", "airflow CLI", timeout
        )

    def sandbox_credentials(self) -> tuple[str, int, str, str]:
        """(host, port, login, password) of the sandbox's web service, from the connection the DAGs use."""
        conn = json.loads(self.env_file["AIRFLOW_CONN_SLATE_API"])
        return conn["host"], int(conn["port"]), conn["login"], conn["password"]


def airflow_service_env(
    config: dict[str, Any], service: str, local: compose_stack.Local, env_file: dict[str, str], airflow_home: Path
) -> dict[str, str]:
    env = environ_without_airflow()
    env.update(compose_stack.container_env(local, airflow_home))
    env.update(compose_stack.service_env(config, service, local, env_file))
    # Each container has its own ports; on one host every process needs free ones.
    env["AIRFLOW__API__PORT"] = str(local.ports["airflow-apiserver"][8080])
    env["AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT"] = str(free_port())
    env["AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT"] = str(free_port())
    env["AIRFLOW__SCHEDULER__SCHEDULER_HEALTH_CHECK_SERVER_PORT"] = str(free_port())
    env["LEADSCORE_AIRFLOW_SECRETS_DIR"] = str(local.volume("airflow-secrets"))
    return env


def _pg(dbname: str = "postgres"):
    import psycopg2

    conn = psycopg2.connect(host=PG_HOST, port=PG_PORT, user=PG_USER, dbname=dbname, connect_timeout=5)
    conn.autocommit = True
    return conn


def create_databases(config: dict[str, Any], local: compose_stack.Local) -> list[str]:
    """The postgres service's init steps on the local server: POSTGRES_DB and docker/postgres-init's databases."""
    names = [config["services"]["postgres"]["environment"]["POSTGRES_DB"]]
    for sql in sorted((ROOT / "docker" / "postgres-init").glob("*.sql")):
        names += re.findall(r"CREATE DATABASE (\w+)", sql.read_text(), flags=re.IGNORECASE)
    created = []
    conn = _pg()
    try:
        with conn.cursor() as cur:
            for name in names:
                cur.execute(f'CREATE DATABASE "{local.db_name(name)}"')
                created.append(local.db_name(name))
    finally:
        conn.close()
    return created


def drop_databases(names: list[str]) -> None:
    conn = _pg()
    try:
        with conn.cursor() as cur:
            for name in names:
                cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        conn.close()


def _require_services() -> None:
    missing = [
        f"{what} on 127.0.0.1:{port}"
        for what, port in (("PostgreSQL", PG_PORT), ("Redis", REDIS_PORT))
        if not port_open(port)
    ]
    if missing:
        pytest.fail(
            f"the stack tests need {' and '.join(missing)} (CI starts them in .ci/run; locally: "
            "pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start; redis-server --daemonize yes ...)"
        )


def _connections_from_log(component: Component) -> dict[str, str] | None:
    text = component.log.read_text(errors="replace") if component.log.exists() else ""
    found = dict(re.findall(r"^(AIRFLOW_CONN_SLATE_(?:API|SFTP))='(.*)'$", text, flags=re.MULTILINE))
    return found if len(found) == 2 else None


@pytest.fixture(scope="session")
def stack_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StackRun]:
    """PostgreSQL databases, the sandbox, MLflow, airflow-init, then the four Airflow components (LocalExecutor)."""
    _require_services()
    root = tmp_path_factory.mktemp("stack")
    prefix = f"stack_{os.getpid()}_{secrets.token_hex(3)}"
    ports = {
        "airflow-apiserver": {8080: free_port()},
        "mlflow": {5000: free_port()},
        "sandbox": {18080: free_port(), 18022: free_port()},
    }
    local = compose_stack.Local(root=root, db_prefix=prefix, ports=ports, redis_db=secrets.randbelow(15) + 1)
    password = secrets.token_urlsafe(12)
    variables = {  # what compose reads from the shell or the project's .env for interpolation
        "POSTGRES_USER": PG_USER,
        "POSTGRES_PASSWORD": "postgres",  # trust auth: ignored by the local server
        "_AIRFLOW_WWW_USER_USERNAME": "admin",
        "_AIRFLOW_WWW_USER_PASSWORD": password,
        "LEADSCORE_SANDBOX_LEADS": str(SANDBOX_LEADS),
        "MLFLOW_WORKERS": "1",
        "AIRFLOW_EXECUTOR": "LocalExecutor",
    }
    config = compose_stack.load(variables)
    # A nested mount: the Airflow services see the sandbox's volume inside LEADSCORE_HOME.
    home = local.volume("leadscore-home")
    (home / "sandbox").symlink_to(local.volume("sandbox-data"), target_is_directory=True)
    airflow_home = root / "airflow-home"
    airflow_home.mkdir()
    stack = Stack()
    databases: list[str] = []
    alerts = root / "alerts.jsonl"
    week_end = last_monday(datetime.now(UTC).replace(tzinfo=None))
    start_date = week_end - timedelta(weeks=CATCHUP_WEEKS)
    try:
        databases = create_databases(config, local)
        sandbox_env = environ_without_airflow()
        sandbox_env.update(compose_stack.container_env(local, airflow_home))
        sandbox_env.update(compose_stack.service_env(config, "sandbox", local, {}))
        sandbox = stack.add(
            Component(
                "sandbox",
                compose_stack.service_command(config, "sandbox", local),
                sandbox_env,
                root / "logs" / "sandbox.log",
                root,
            )
        )
        mlflow_env = environ_without_airflow()
        mlflow_env.update(compose_stack.container_env(local, airflow_home))
        mlflow_env.update(compose_stack.service_env(config, "mlflow", local, {}))
        stack.add(
            Component(
                "mlflow",
                compose_stack.service_command(config, "mlflow", local),
                mlflow_env,
                root / "logs" / "mlflow.log",
                root,
            )
        )
        connections = stack.wait("the sandbox's connection lines", lambda: _connections_from_log(sandbox), timeout=240)
        env_file = {  # the test's .env: connections, and settings a user has (shorter intervals, a small sandbox)
            **connections,
            "LEADSCORE_START_DATE": start_date.date().isoformat(),
            "LEADSCORE_SENSOR_POKE_SECONDS": "5",
            "LEADSCORE_RETRY_DELAY_SECONDS": "5",
            "LEADSCORE_CHUNK_ROWS": "250",
            "LEADSCORE_MIN_SCORED_LEADS": "50",
            # A lighter training (fewer leads and landmark rows): settings a user has too.
            "LEADSCORE_TRAINING_WINDOW_DAYS": "365",
            "LEADSCORE_LANDMARK_DAYS": "0,3,14,60,180",
            "LEADSCORE_ALERT_COMMAND": shlex.join(
                [
                    sys.executable,
                    "-c",
                    "import sys; open(sys.argv[1], 'a').write(sys.stdin.read() + chr(10))",
                    str(alerts),
                ]
            ),
            "AIRFLOW__API__WORKERS": "1",
            "AIRFLOW__CELERY__WORKER_CONCURRENCY": "2",
            "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "30",
        }
        run = StackRun(
            stack,
            None,
            local,
            variables,
            env_file,
            airflow_home,
            home,
            local.volume("sandbox-data"),
            start_date,
            [start_date + timedelta(weeks=i + 1) for i in range(CATCHUP_WEEKS)],
            alerts,
        )  # type: ignore[arg-type]
        init_env = airflow_service_env(config, "airflow-init", local, env_file, airflow_home)
        run_checked(
            compose_stack.service_command(config, "airflow-init", local),
            init_env,
            root,
            root / "logs" / "airflow-init.log",
            "airflow-init",
            timeout=300,
        )
        mlflow_port = ports["mlflow"][5000]
        stack.wait("MLflow /health", lambda: _http_ok(f"http://127.0.0.1:{mlflow_port}/health"), timeout=180)
        for service in AIRFLOW_SERVICES:
            stack.add(
                Component(
                    service,
                    compose_stack.service_command(config, service, local),
                    airflow_service_env(config, service, local, env_file, airflow_home),
                    root / "logs" / f"{service}.log",
                    root,
                )
            )
        api_port = ports["airflow-apiserver"][8080]
        stack.wait(
            "the api-server's /api/v2/version",
            lambda: _http_ok(f"http://127.0.0.1:{api_port}/api/v2/version"),
            timeout=240,
        )
        run.api = ApiClient(f"http://127.0.0.1:{api_port}", "admin", password)
        stack.wait("the three DAGs parsed", lambda: _dags_parsed(run.api), timeout=240)
        yield run
    finally:
        stack.stop()
        if databases:
            drop_databases(databases)
        _flush_redis(local.redis_db)


def _http_ok(url: str) -> bool:
    import urllib.request

    with urllib.request.urlopen(url, timeout=5) as resp:
        return resp.status == 200


def _dags_parsed(api: ApiClient) -> bool:
    errors = api.get("/importErrors")
    if errors["total_entries"]:
        raise StackError(f"DAG import errors: {json.dumps(errors['import_errors'])[:3000]}")
    found = {d["dag_id"] for d in api.get("/dags?limit=100")["dags"]}
    return set(DAG_IDS) <= found


def _flush_redis(db: int) -> None:
    import contextlib

    with contextlib.suppress(Exception):
        import redis

        redis.Redis(host="127.0.0.1", port=REDIS_PORT, db=db, socket_timeout=5).flushdb()


def wait_for_runs(run: StackRun, dag_id: str, count: int, timeout: float, run_type: str | None = None) -> list[dict]:
    """Wait until ``dag_id`` has ``count`` finished runs (of ``run_type``); fail at once on a failed run."""

    def probe() -> list[dict] | None:
        runs = [r for r in run.api.dag_runs(dag_id) if run_type is None or r["run_type"] == run_type]
        failed = [r["dag_run_id"] for r in runs if r["state"] == "failed"]
        if failed:
            raise StackError(
                f"{dag_id} runs failed: {failed}\n{describe_failures(run, dag_id, failed)}\n{run.stack.report()}"
            )
        done = [r for r in runs if r["state"] == "success"]
        return done if len(done) >= count else None

    return run.stack.wait(f"{count} successful {run_type or ''} runs of {dag_id}", probe, timeout=timeout, interval=3)


def describe_failures(run: StackRun, dag_id: str, run_ids: list[str]) -> str:
    lines = []
    for rid in run_ids:
        for ti in run.api.task_instances(dag_id, rid):
            if ti["state"] not in ("success", "skipped"):
                lines.append(f"{dag_id} {rid} {ti['task_id']}: {ti['state']} (try {ti['try_number']})")
    return "\n".join(lines)


def wait_seconds(start: float) -> float:
    return time.monotonic() - start
