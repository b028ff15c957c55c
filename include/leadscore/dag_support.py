"""What the three DAG files share at parse time: default args, timetables and the extract Asset.

Part of the small Airflow adapter layer. Parse-time cheap by design: no connections, no Variables, no pandas, no
MLflow (Airflow's "top level Python code" rule).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow.sdk import Asset, CronDataIntervalTimetable, CronTriggerTimetable

from leadscore.intervals import MONTHLY_CRON, WEEKLY_CRON

# Emitted by `lead_data` when an interval's extract is complete; `lead_training` and `lead_inference` read it.
# Name only: a custom URI scheme makes Airflow look up a URI handler (and import its ORM models) on every parse.
EXTRACT_ASSET = Asset(name="slate_weekly_extract", group="leadscore")


def _on_failure(context: dict) -> None:
    """Hook point for e-mail or chat alerts on task failure; off unless LEADSCORE_ALERT_COMMAND is set."""
    from leadscore.alerts import notify_failure

    notify_failure(context)


def _default_args() -> dict:
    from leadscore.settings import load_settings

    settings = load_settings()  # an environment read only: cheap at parse time
    return {
        "owner": "admissions-analytics",
        "retries": settings.task_retries,
        "retry_delay": timedelta(seconds=settings.retry_delay_seconds),
        "retry_exponential_backoff": True,
        "execution_timeout": timedelta(hours=1),
        "on_failure_callback": _on_failure,
    }


# Retries and their delay from LEADSCORE_TASK_RETRIES / LEADSCORE_RETRY_DELAY_SECONDS.
DEFAULT_ARGS = _default_args()


def first_week() -> datetime:
    """The weekly DAGs' start_date, from LEADSCORE_START_DATE (an environment read only: cheap at parse time)."""
    from leadscore.settings import load_settings

    return datetime.fromisoformat(load_settings().start_date)


# How long a run waits for its inputs (the week's extract, a first champion) before it fails and alerts.
WAIT_TIMEOUT = timedelta(hours=12)


def poke_seconds() -> int:
    """Seconds between the wait tasks' checks, from LEADSCORE_SENSOR_POKE_SECONDS (an environment read: parse-time
    cheap). The checks run in the triggerer (``leadscore.waiting``): a waiting task holds no worker slot."""
    from leadscore.settings import load_settings

    return load_settings().sensor_poke_seconds


def weekly_timetable() -> CronDataIntervalTimetable:
    """Monday 00:00 UTC; each run's data interval is the Monday-to-Monday week that just ended."""
    return CronDataIntervalTimetable(WEEKLY_CRON, timezone="UTC")


def monthly_timetable() -> CronTriggerTimetable:
    """The first of each month at 03:00 UTC."""
    return CronTriggerTimetable(MONTHLY_CRON, timezone="UTC")
