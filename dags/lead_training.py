"""`lead_training`: build point-in-time landmark rows, fit the Cox model and challengers, gate and register in MLflow."""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow.sdk import DAG, Param, task

from leadscore.dag_support import DEFAULT_ARGS, EXTRACT_ASSET, WAIT_TIMEOUT, monthly_timetable, poke_seconds
from leadscore.waiting import WaitForInputs

with DAG(
    dag_id="lead_training",
    description="Monthly and on-demand training of the lead-propensity survival model with a promotion gate",
    doc_md=__doc__
    + """

Trains on every stored extract up to the run's date (or `as_of`); on a fresh home it first waits for `lead_data`'s first
extract (waited for in the triggerer, checked every `LEADSCORE_SENSOR_POKE_SECONDS`). Candidates: a regularized Cox model (preferred when
within tolerance) and two challengers (logistic regression, gradient-boosted trees), judged on a later time block.
The `champion` alias of `lead_propensity` moves only when the gate passes; a failed gate leaves the champion and ends
as a visible warning. Everything is tracked in MLflow (`make mlflow`).
""",
    schedule=monthly_timetable(),
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    dagrun_timeout=timedelta(hours=3),
    tags=["leadscore", "model", "training"],
    params={
        "horizon_days": Param(
            30, type="integer", minimum=1, maximum=365, description="H: predict an application within H days"
        ),
        "window_days": Param(
            1095,
            type="integer",
            minimum=90,
            maximum=3650,
            description="Train on leads that originated in this many days before as_of",
        ),
        "as_of": Param(
            None,
            type=["null", "string"],
            format="date",
            description="Train as of this date (default: the latest extract's end)",
        ),
    },
) as dag:

    @task(inlets=[EXTRACT_ASSET])
    def build_training_set(**context) -> dict:
        """Landmark rows with point-in-time features, durations and labels, split in time; written as Parquet."""
        from leadscore.airflow_adapter import run_context
        from leadscore.tasks.training import build_training_set as build

        rc = run_context(context)
        return build(rc.settings, as_of=rc.params.get("as_of") or rc.run_date_iso)

    @task
    def train_and_register(built: dict, **context) -> dict:
        """Fit and evaluate the candidates, log to MLflow, register and gate the chosen one."""
        from leadscore.airflow_adapter import run_context
        from leadscore.tasks.training import train_and_register as train

        rc = run_context(context)
        return train(rc.settings, built)

    @task
    def report_gate(result: dict) -> None:
        """Surface the gate's decision: a failed gate shows as a skipped task with its reasons; the champion stays."""
        from airflow.sdk.exceptions import AirflowSkipException

        from leadscore.tasks.training import report_gate as report

        report(result)
        if result.get("gate") != "passed":
            raise AirflowSkipException(f"gate failed, champion unchanged: {'; '.join(result.get('gate_reasons', []))}")

    built = build_training_set()
    (
        WaitForInputs(
            task_id="wait_for_extract", check="any_extract", poke_seconds=poke_seconds(), wait_timeout=WAIT_TIMEOUT
        )
        >> built
    )
    report_gate(train_and_register(built))
