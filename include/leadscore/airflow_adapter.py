"""Runtime glue between an Airflow task's context and LeadScore's plain functions.

The only module (with dag_support) that knows about Airflow. Connection lookups happen here, at task run time,
never at DAG parse time. Secrets are read from Airflow Connections and never logged.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from leadscore.intervals import Interval, resolve_interval, to_naive_utc
from leadscore.settings import Settings, load_settings

SLATE_API_CONN_ID = "slate_api"
SLATE_SFTP_CONN_ID = "slate_sftp"

# DAG params that override a setting of the same run.
_PARAM_TO_SETTING = {
    "horizon_days": "horizon_days",
    "lookback_days": "lookback_days",
    "window_days": "training_window_days",
}


@dataclass(frozen=True)
class RunContext:
    """What a task needs from its Airflow context: settings with param overrides, the interval, the params."""

    settings: Settings
    interval: Interval
    params: dict[str, Any]
    run_date_iso: str


def run_context(context: dict[str, Any]) -> RunContext:
    """Build the RunContext of a running task.

    Raises:
        ValueError: the run has no interval and no `as_of` param (see intervals.resolve_interval).
    """
    from leadscore.files import owner_only_umask

    owner_only_umask()  # before any file is written: MLflow and report files too
    params = dict(context.get("params") or {})
    overrides = {field: params[p] for p, field in _PARAM_TO_SETTING.items() if params.get(p) is not None}
    settings = load_settings().replace(**overrides) if overrides else load_settings()
    dag_run = context.get("dag_run")
    run_after = getattr(dag_run, "run_after", None) or context.get("logical_date")
    interval = resolve_interval(
        context.get("data_interval_start"), context.get("data_interval_end"), run_after, params.get("as_of")
    )
    run_date = to_naive_utc(run_after).date().isoformat() if run_after is not None else interval.end_date.isoformat()
    return RunContext(settings=settings, interval=interval, params=params, run_date_iso=run_date)


def slate_api_config(conn_id: str = SLATE_API_CONN_ID):
    """The web-service client configuration from the Airflow Connection ``conn_id``.

    Raises:
        airflow's connection-not-found error, or ValueError naming the missing field.
    """
    from airflow.sdk import BaseHook

    from leadscore.slate.connections import api_config_from_connection

    conn = BaseHook.get_connection(conn_id)
    return api_config_from_connection(
        conn_type=conn.conn_type,
        host=conn.host,
        port=conn.port,
        schema=conn.schema,
        login=conn.login,
        password=conn.password,
        extra=conn.extra_dejson,
    )
