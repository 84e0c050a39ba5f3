"""Housekeeping that runs every so often in each process (pruning old rows and the like).

Tasks must be harmless when several processes run them at about the same time.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from townsquare.state import AppState

log = logging.getLogger("townsquare.jobs")

Task = Callable[[AppState], Awaitable[None]]


@dataclass(frozen=True)
class PeriodicTask:
    name: str
    every_seconds: float
    run: Task


PERIODIC_TASKS: dict[str, PeriodicTask] = {}


def periodic(name: str, *, every_seconds: float) -> Callable[[Task], Task]:
    def register(function: Task) -> Task:
        PERIODIC_TASKS[name] = PeriodicTask(name, every_seconds, function)
        return function

    return register


FIRST_RUN_AFTER_SECONDS = 60.0


class PeriodicSchedule:
    """When each task next runs in this process.

    The first run waits a minute (or the task's period, if shorter): start-up is busy enough,
    and a process that restarts in a loop should not redo the housekeeping each time.
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._started = clock()
        self._next_run: dict[str, float] = {}

    async def run_due(self, state: AppState) -> None:
        now = self._clock()
        for task in list(PERIODIC_TASKS.values()):
            due = self._next_run.get(task.name)
            if due is None:
                due = self._started + min(task.every_seconds, FIRST_RUN_AFTER_SECONDS)
                self._next_run[task.name] = due
            if now < due:
                continue
            self._next_run[task.name] = now + task.every_seconds
            try:
                await task.run(state)
            except Exception:
                log.exception("periodic task %s failed", task.name)
