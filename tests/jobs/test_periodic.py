"""Housekeeping tasks run on their schedule, and one failing does not stop the others."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi import FastAPI

from townsquare.jobs.periodic import PERIODIC_TASKS, PeriodicSchedule, periodic
from townsquare.state import AppState, state_of

runs: list[str] = []


@pytest.fixture
def tasks() -> Iterator[None]:
    saved = dict(PERIODIC_TASKS)
    PERIODIC_TASKS.clear()

    @periodic("test.broken", every_seconds=0.05)
    async def broken(_state: AppState) -> None:
        raise RuntimeError("housekeeping failed")

    @periodic("test.tick", every_seconds=0.05)
    async def tick(_state: AppState) -> None:
        runs.append("tick")

    runs.clear()
    yield
    PERIODIC_TASKS.clear()
    PERIODIC_TASKS.update(saved)


async def test_tasks_wait_for_their_period_then_repeat(app: FastAPI, tasks: None) -> None:
    state = state_of(app)
    # The schedule's own clock, moved by hand, so a slow machine cannot add a period.
    now = [1000.0]
    schedule = PeriodicSchedule(clock=lambda: now[0])
    await schedule.run_due(state)
    assert runs == []  # not straight at start-up

    now[0] += 0.06
    await schedule.run_due(state)
    await schedule.run_due(state)
    assert runs == ["tick"]

    now[0] += 0.03
    await schedule.run_due(state)
    assert runs == ["tick"]  # the period has not passed again yet

    now[0] += 0.03
    await schedule.run_due(state)
    assert runs == ["tick", "tick"]
