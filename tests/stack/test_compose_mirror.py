"""The stack tier starts what docker-compose.yaml declares: every service has a process (or the machine's own server),
and the translation to 127.0.0.1 changes only host names, ports, mount paths and database names. Fast: no process."""

from __future__ import annotations

import re
from pathlib import Path

from tests.stack import compose_stack
from tests.stack.conftest import AIRFLOW_SERVICES
from tests.test_compose import command, environment

# How the stack tier starts each compose service (the README's "Docker stack" section names the test of each).
STARTED_AS = {
    "postgres": "the machine's PostgreSQL: a fresh database per POSTGRES_DB and docker/postgres-init script",
    "redis": "the machine's Redis (Celery profile), one database index per session",
    "airflow-init": "docker/airflow-init.sh, run once",
    "airflow-apiserver": "process",
    "airflow-scheduler": "process (LocalExecutor, then CeleryExecutor)",
    "airflow-dag-processor": "process",
    "airflow-triggerer": "process",
    "airflow-worker": "two processes (Celery profile)",
    "mlflow": "process",
    "sandbox": "process",
}


def _local(tmp_path: Path) -> compose_stack.Local:
    ports = {"airflow-apiserver": {8080: 41001}, "mlflow": {5000: 41002}, "sandbox": {18080: 41003, 18022: 41004}}
    return compose_stack.Local(root=tmp_path, db_prefix="stack_x", ports=ports, redis_db=5)


def _config(executor: str = "LocalExecutor") -> dict:
    return compose_stack.load(
        {"POSTGRES_USER": "postgres", "AIRFLOW_EXECUTOR": executor, "_AIRFLOW_WWW_USER_PASSWORD": "pw"}
    )


def test_every_compose_service_is_started_by_the_stack_tier() -> None:
    assert set(_config()["services"]) == set(STARTED_AS), "a compose service the stack tests do not start (or gone)"
    assert set(AIRFLOW_SERVICES) <= set(STARTED_AS)


def test_translation_changes_only_hosts_ports_paths_and_database_names(tmp_path: Path) -> None:
    config, local = _config(), _local(tmp_path)
    host_or_path = re.compile(r"@postgres:|//redis:|//airflow-apiserver:|//mlflow:|/opt/")
    for name, service in config["services"].items():
        declared = environment(service)
        translated = compose_stack.service_env(config, name, local, {})
        assert set(translated) == set(declared), name
        for key, value in declared.items():
            if host_or_path.search(value):
                assert translated[key] != value and not host_or_path.search(translated[key]), (name, key)
            else:
                assert translated[key] == value, f"{name}: {key} changed from {value!r} to {translated[key]!r}"


def test_commands_are_the_compose_commands(tmp_path: Path) -> None:
    config, local = _config(), _local(tmp_path)
    for name in (*AIRFLOW_SERVICES, "airflow-worker"):
        argv = compose_stack.service_command(config, name, local)
        assert argv[0].endswith("/airflow") and argv[1:] == command(config["services"][name]), name
    mlflow = compose_stack.service_command(config, "mlflow", local)
    declared = command(config["services"]["mlflow"])
    assert mlflow[1:4] == declared[1:4] == ["-m", "mlflow", "server"] and len(mlflow) == len(declared)
    assert mlflow[mlflow.index("--port") + 1] == "41002" and mlflow[mlflow.index("--host") + 1] == "127.0.0.1"
    assert "--serve-artifacts" in mlflow and "/opt/" not in " ".join(mlflow)
    assert "@127.0.0.1:5432/stack_x_mlflow" in mlflow[mlflow.index("--backend-store-uri") + 1]
    init = compose_stack.service_command(config, "airflow-init", local)
    assert init == ["bash", str(compose_stack.ROOT / "docker" / "airflow-init.sh")]


def test_execution_api_and_tracking_urls_follow_the_local_ports(tmp_path: Path) -> None:
    config, local = _config(), _local(tmp_path)
    env = compose_stack.service_env(config, "airflow-scheduler", local, {"FROM_DOT_ENV": "1"})
    assert env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] == "http://127.0.0.1:41001/execution/"
    assert env["LEADSCORE_MLFLOW_TRACKING_URI"] == "http://127.0.0.1:41002"
    assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].endswith("@127.0.0.1:5432/stack_x_airflow")
    assert env["FROM_DOT_ENV"] == "1", "services with env_file get the test's .env"
    celery = compose_stack.service_env(_config("CeleryExecutor"), "airflow-scheduler", local, {})
    assert celery["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
    assert celery["AIRFLOW__CELERY__BROKER_URL"] == "redis://127.0.0.1:6379/5"
