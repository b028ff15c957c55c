"""The triggerer side of ``leadscore.waiting``: re-check a run's input until it exists, then fire once."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

from airflow.triggers.base import BaseTrigger, TriggerEvent


class InputsReadyTrigger(BaseTrigger):
    """Fires ``{"check": ...}`` once ``leadscore.waiting.inputs_ready`` is true, checking every ``poke_seconds``.

    The check runs in a thread (it reads files or asks MLflow), so the triggerer's event loop never blocks; an error
    in it (e.g. the tracking server is down) ends the trigger and fails the task instead of waiting silently.
    """

    def __init__(
        self, check: str, interval_start: str | None = None, interval_end: str | None = None, poke_seconds: float = 30.0
    ) -> None:
        super().__init__()
        self.check = check
        self.interval_start = interval_start
        self.interval_end = interval_end
        self.poke_seconds = float(poke_seconds)

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            "leadscore.triggers.InputsReadyTrigger",
            {
                "check": self.check,
                "interval_start": self.interval_start,
                "interval_end": self.interval_end,
                "poke_seconds": self.poke_seconds,
            },
        )

    async def run(self) -> AsyncIterator[TriggerEvent]:
        from leadscore.waiting import inputs_ready

        while True:
            if await asyncio.to_thread(inputs_ready, self.check, self.interval_start, self.interval_end):
                yield TriggerEvent({"check": self.check})
                return
            await asyncio.sleep(self.poke_seconds)
