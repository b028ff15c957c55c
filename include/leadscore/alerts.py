"""Failure alerts: a hook point for e-mail or chat, off by default.

Set ``LEADSCORE_ALERT_COMMAND`` to a shell command (e.g. a script that posts to a chat webhook); it receives a JSON
description of the failed task on stdin. Nothing else is sent and no secret is included.
"""

from __future__ import annotations

import json
import logging
import os
import shlex
import subprocess

log = logging.getLogger(__name__)


def failure_payload(context: dict) -> dict:
    """A small, secret-free description of a failed task from an Airflow context."""
    ti = context.get("task_instance") or context.get("ti")
    exc = context.get("exception")
    return {
        "dag_id": getattr(ti, "dag_id", None),
        "task_id": getattr(ti, "task_id", None),
        "run_id": getattr(ti, "run_id", None),
        "try_number": getattr(ti, "try_number", None),
        "error": f"{type(exc).__name__}: {exc}" if exc is not None else None,
    }


def notify_failure(context: dict, command: str | None = None) -> bool:
    """Run the configured alert command with the failure payload on stdin.

    Returns:
        True when a command ran, False when alerts are off.
    Errors:
        A failing alert command is logged, never raised: an alert must not mask the task's own failure.
    """
    command = command if command is not None else os.environ.get("LEADSCORE_ALERT_COMMAND", "")
    if not command:
        return False
    payload = json.dumps(failure_payload(context))
    try:
        subprocess.run(shlex.split(command), input=payload, text=True, timeout=30, check=True)
    except (OSError, subprocess.SubprocessError) as exc:
        log.error("alert command failed: %s", exc)
    return True
