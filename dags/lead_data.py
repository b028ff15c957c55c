"""`lead_data`: pull the week's new and changed Slate records, validate, quarantine, store per-interval extracts."""

from __future__ import annotations

from datetime import timedelta

from airflow.sdk import DAG, Param, task

from leadscore.dag_support import DEFAULT_ARGS, EXTRACT_ASSET, first_week, weekly_timetable

with DAG(
    dag_id="lead_data",
    description="Weekly incremental, validated extract of leads and interactions from Slate's query web service",
    doc_md=__doc__
    + """

Runs every Monday 00:00 UTC for the week that just ended (`CronDataIntervalTimetable`, catch-up on). A manual run with
no logical date processes the most recently ended week, or the week ending on or before the `as_of` param.
The first run (no earlier extract) loads the whole history. Outputs under `LEADSCORE_HOME/extracts/`, replaced whole on
a re-run; bad rows go to `LEADSCORE_HOME/quarantine/` with a reason per row.
""",
    schedule=weekly_timetable(),
    start_date=first_week(),
    catchup=True,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    dagrun_timeout=timedelta(hours=2),
    tags=["leadscore", "slate", "data"],
    params={
        "as_of": Param(
            None,
            type=["null", "string"],
            format="date",
            description="Manual runs: process the week ending on or before this date",
        ),
        "full_history": Param(False, type="boolean", description="Reload the whole history up to the interval end"),
    },
) as dag:

    @task(outlets=[EXTRACT_ASSET])
    def extract(**context) -> dict:
        """Fetch, validate, clean and store both queries for the run's interval (all or nothing)."""
        from leadscore.airflow_adapter import run_context, slate_api_config
        from leadscore.tasks.data import extract_week

        rc = run_context(context)
        summary = extract_week(
            rc.settings, rc.interval, slate_api_config(), full_history=bool(rc.params.get("full_history"))
        )
        context["outlet_events"][EXTRACT_ASSET].extra = {"interval_end": rc.interval.end.isoformat()}
        return summary

    @task
    def quality_report(summary: dict) -> dict:
        """Log the interval's data-quality summary (rows in, quarantined by reason, duplicates, new leads)."""
        from leadscore.tasks.data import log_quality

        return log_quality(summary)

    quality_report(extract())
