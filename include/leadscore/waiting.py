"""Waiting for a run's inputs without holding a worker: the DAGs' wait tasks defer to Airflow's triggerer.

A run created when its DAG is unpaused may need inputs that another DAG is still producing (the week's extract, a
first champion). ``WaitForInputs`` checks once; when the input is missing it defers to ``InputsReadyTrigger``, which
re-checks every ``poke_seconds`` inside the triggerer (one process, the check's imports loaded once) and resumes the
task the moment the input exists. Part of the Airflow adapter layer: parse-time cheap (the trigger module, pandas and
MLflow are imported only when a task runs).
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from airflow.sdk import BaseOperator

log = logging.getLogger(__name__)

CHECKS = {
    "week_extract": "lead_data has stored the run's week",
    "any_extract": "lead_data has stored a first extract",
    "champion": "lead_training has registered a champion",
}


def inputs_ready(check: str, interval_start: str | None = None, interval_end: str | None = None) -> bool:
    """Whether the input named by ``check`` (a key of CHECKS) exists, with the settings of this process.

    Raises:
        ValueError: an unknown check, or ``week_extract`` without an interval.
        MlflowException: the tracking server cannot be reached (an outage is not a missing champion).
    """
    from leadscore.settings import load_settings

    settings = load_settings()
    if check == "champion":
        from leadscore.tasks.inference import champion_ready

        return champion_ready(settings)
    if check == "any_extract":
        from leadscore.tasks.training import extract_available

        return extract_available(settings)
    if check == "week_extract":
        if not (interval_start and interval_end):
            raise ValueError("the week_extract check needs the run's interval")
        from datetime import datetime

        from leadscore.intervals import Interval
        from leadscore.tasks.inference import extract_ready

        interval = Interval(datetime.fromisoformat(interval_start), datetime.fromisoformat(interval_end))
        return extract_ready(settings, interval)
    raise ValueError(f"unknown check {check!r}; expected one of {sorted(CHECKS)}")


class WaitForInputs(BaseOperator):
    """Succeeds once ``check``'s input exists; waits in the triggerer (no worker slot), fails after ``wait_timeout``.

    Args:
        check: a key of CHECKS.
        poke_seconds: seconds between checks while waiting.
        wait_timeout: how long to wait before the task fails (and alerts).
    """

    ui_color = "#e8f0fe"

    def __init__(self, *, check: str, poke_seconds: float, wait_timeout: timedelta, **kwargs: Any) -> None:
        if check not in CHECKS:
            raise ValueError(f"unknown check {check!r}; expected one of {sorted(CHECKS)}")
        kwargs.setdefault("doc", f"Wait until {CHECKS[check]} (checked every {poke_seconds:g} s in the triggerer).")
        super().__init__(**kwargs)
        self.check = check
        self.poke_seconds = poke_seconds
        self.wait_timeout = wait_timeout

    def execute(self, context: Any) -> bool:
        start = end = None
        if self.check == "week_extract":
            from leadscore.airflow_adapter import run_context

            interval = run_context(context).interval
            start, end = interval.start.isoformat(), interval.end.isoformat()
        if inputs_ready(self.check, start, end):
            return True
        from leadscore.triggers import InputsReadyTrigger

        log.info("waiting until %s; checking every %g s", CHECKS[self.check], self.poke_seconds)
        self.defer(
            trigger=InputsReadyTrigger(self.check, start, end, self.poke_seconds),
            method_name="resume",
            timeout=self.wait_timeout,
        )

    def resume(self, context: Any, event: dict[str, Any] | None = None) -> bool:
        """Called when the trigger fired: the input exists now."""
        log.info("ready: %s", CHECKS[self.check])
        return True
