"""`lead_inference`: score recent open leads with the champion and deliver chunked score files to Slate's SFTP."""

from __future__ import annotations

from datetime import timedelta

from airflow.sdk import DAG, Param, task

from leadscore.dag_support import DEFAULT_ARGS, EXTRACT_ASSET, WAIT_TIMEOUT, first_week, poke_seconds, weekly_timetable
from leadscore.waiting import WaitForInputs

with DAG(
    dag_id="lead_inference",
    description="Weekly scoring of recent open leads and safe, idempotent delivery of score files to Slate",
    doc_md=__doc__
    + """

Runs for the same weekly interval as `lead_data`, once that interval's extract exists and a champion is registered
(both waited for in the triggerer, checked every `LEADSCORE_SENSOR_POKE_SECONDS`, no worker slot held), and can be backfilled
(`make backfill FROM=... TO=...`). Scores are point-in-time as of the interval end. Files
`lead_scores_<YYYYMMDD>_<part>_of_<n>.csv` go to `/incoming/lead_scores/` as `.part` then renamed; a re-run sends only
what is missing or different. `dry_run` writes files and the manifest without uploading.
""",
    schedule=weekly_timetable(),
    start_date=first_week(),
    catchup=True,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    dagrun_timeout=timedelta(hours=2),
    tags=["leadscore", "slate", "scoring"],
    params={
        "dry_run": Param(False, type="boolean", description="Write files and manifest, do not upload"),
        "lookback_days": Param(
            365,
            type="integer",
            minimum=7,
            maximum=3650,
            description="Score leads that originated within this many days",
        ),
        "as_of": Param(
            None,
            type=["null", "string"],
            format="date",
            description="Manual runs: score as of the end of the week ending on or before this date",
        ),
    },
) as dag:

    @task
    def score(**context) -> dict:
        """Load the week's champion (the version that held @champion for it), score open leads as of the interval
        end, write the chunked files and manifest."""
        from leadscore.airflow_adapter import run_context
        from leadscore.tasks.inference import score_week

        rc = run_context(context)
        return score_week(rc.settings, rc.interval)

    @task
    def deliver(scored: dict, **context) -> dict:
        """Push the files through SFTP (`.part` then rename, size verified), recorded in the delivery ledger."""
        from leadscore.airflow_adapter import run_context
        from leadscore.tasks.inference import deliver_week

        rc = run_context(context)
        return deliver_week(rc.settings, scored, dry_run=bool(rc.params.get("dry_run")))

    @task
    def monitor(delivered: dict, **context) -> dict:
        """Realized performance of past scores, drift against the training reference, the weekly report.

        Past a failure bound the task fails (no retry: the data will not change) after the delivery went out."""
        from airflow.sdk.exceptions import AirflowFailException

        from leadscore.airflow_adapter import run_context
        from leadscore.monitoring.gates import MonitoringGateError
        from leadscore.tasks.inference import monitor_week

        rc = run_context(context)
        try:
            return monitor_week(rc.settings, rc.interval, delivered)
        except MonitoringGateError as exc:
            raise AirflowFailException(str(exc)) from exc

    scored = score()
    wait_for_extract = WaitForInputs(
        task_id="wait_for_extract",
        check="week_extract",
        poke_seconds=poke_seconds(),
        wait_timeout=WAIT_TIMEOUT,
        inlets=[EXTRACT_ASSET],
    )
    wait_for_champion = WaitForInputs(
        task_id="wait_for_champion", check="champion", poke_seconds=poke_seconds(), wait_timeout=WAIT_TIMEOUT
    )
    [wait_for_extract, wait_for_champion] >> scored
    monitor(deliver(scored))
