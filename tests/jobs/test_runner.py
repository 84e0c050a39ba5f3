"""The job runner: leases, crash recovery, retries and giving up."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from typing import Any

import pytest
from fastapi import FastAPI
from sqlalchemy import select, update

from townsquare.config import Settings
from townsquare.db.base import utcnow
from townsquare.jobs.lease import MAX_ATTEMPTS, finish_job, lease_jobs, lease_next_job
from townsquare.jobs.models import Job
from townsquare.jobs.queue import BATCH_HANDLERS, Writes, batch_handler, enqueue, handler
from townsquare.jobs.runner import (
    BATCH_SIZE,
    run_next_job,
    run_next_jobs,
    run_pending_jobs,
)
from townsquare.jobs.stats import queue_stats
from townsquare.state import AppState, state_of
from townsquare.streaming.models import StreamEvent
from townsquare.streaming.publish import publish

calls: list[dict[str, Any]] = []


@handler("test.record")
async def record(_state: Any, payload: dict[str, Any]) -> None:
    calls.append(payload)


@handler("test.broken")
async def broken(_state: Any, _payload: dict[str, Any]) -> None:
    raise RuntimeError("the disk is on fire")


# A batched kind whose visible effect is a row per job (a stream event), written with the job's
# end; ``batches`` records how the runner grouped the jobs.
batches: list[list[int]] = []


async def _write_events(session: Any, numbers: list[int]) -> None:
    for n in numbers:
        if n < 0:
            raise RuntimeError("negative numbers are not accepted")
        publish(session, "test", "batched", {"n": n})


@handler("test.batched")
async def batched_alone(state: AppState, payload: dict[str, Any]) -> None:
    batches.append([payload["n"]])
    async with state.db.write() as session:
        await _write_events(session, [payload["n"]])


@batch_handler("test.batched")
async def batched(_state: AppState, payloads: list[dict[str, Any]]) -> Writes:
    numbers = [payload["n"] for payload in payloads]
    batches.append(numbers)

    async def write(session: Any) -> None:
        await _write_events(session, numbers)

    return write


async def _events(state: AppState) -> list[int]:
    async with state.db.read() as session:
        rows = await session.scalars(
            select(StreamEvent.payload).where(StreamEvent.event == "batched")
        )
        return sorted(json.loads(row)["n"] for row in rows)


@pytest.fixture
def settings(settings: Settings) -> Settings:
    # No background runners: each test decides exactly who runs what.
    settings.job_workers = 0
    return settings


@pytest.fixture(autouse=True)
def clear_calls() -> None:
    calls.clear()
    batches.clear()


async def _enqueue(state: AppState, kind: str, payload: dict[str, Any]) -> int:
    async with state.db.write() as session:
        job = enqueue(session, kind, payload)
        await session.flush()
        return job.id


async def _job(state: AppState, job_id: int) -> Job:
    async with state.db.read() as session:
        job = await session.scalar(select(Job).where(Job.id == job_id))
        assert job is not None
        return job


async def test_a_job_runs_once_and_is_done(app: FastAPI) -> None:
    state = state_of(app)
    job_id = await _enqueue(state, "test.record", {"n": 1})

    assert await run_pending_jobs(state) == 1
    assert await run_pending_jobs(state) == 0

    assert calls == [{"n": 1}]
    job = await _job(state, job_id)
    assert (job.state, job.attempts, job.locked_until) == ("done", 1, None)


async def test_a_job_left_by_a_dead_runner_is_run_by_another(app: FastAPI) -> None:
    state = state_of(app)
    job_id = await _enqueue(state, "test.record", {"n": 2})
    async with state.db.write() as session:
        dead_lease = await lease_next_job(session, duration=dt.timedelta(seconds=60))
    assert dead_lease is not None and dead_lease.job_id == job_id

    # While the lease holds, nobody else takes the job.
    assert await run_next_job(state) is False
    assert calls == []

    async with state.db.write() as session:
        await session.execute(
            update(Job)
            .where(Job.id == job_id)
            .values(locked_until=utcnow() - dt.timedelta(seconds=1))
        )
    assert await run_pending_jobs(state) == 1
    assert calls == [{"n": 2}]
    job = await _job(state, job_id)
    assert (job.state, job.attempts) == ("done", 2)

    # The runner that was thought dead comes back and reports: it no longer holds the job.
    async with state.db.write() as session:
        await finish_job(session, dead_lease)
    assert (await _job(state, job_id)).state == "done"


async def test_a_lease_takes_no_more_jobs_than_its_limit(app: FastAPI) -> None:
    state = state_of(app)
    async with state.db.write() as session:
        for n in range(BATCH_SIZE + 5):
            enqueue(session, "test.record", {"n": n})
    async with state.db.write() as session:
        first = await lease_jobs(session, duration=dt.timedelta(seconds=60), limit=BATCH_SIZE)
    async with state.db.write() as session:
        second = await lease_jobs(session, duration=dt.timedelta(seconds=60), limit=BATCH_SIZE)
    assert (len(first), len(second)) == (BATCH_SIZE, 5)
    assert not {lease.job_id for lease in first} & {lease.job_id for lease in second}


async def test_two_runners_never_lease_the_same_job(app: FastAPI) -> None:
    state = state_of(app)
    await _enqueue(state, "test.record", {"n": 3})
    lease = dt.timedelta(seconds=60)
    async with state.db.write() as session:
        first = await lease_next_job(session, duration=lease)
    async with state.db.write() as session:
        second = await lease_next_job(session, duration=lease)
    assert first is not None
    assert second is None


async def test_a_failing_job_is_retried_later_then_given_up(app: FastAPI) -> None:
    state = state_of(app)
    job_id = await _enqueue(state, "test.broken", {})

    assert await run_pending_jobs(state) == 1
    job = await _job(state, job_id)
    assert job.state == "queued"
    assert job.attempts == 1
    assert job.last_error is not None and "the disk is on fire" in job.last_error
    assert job.run_at > utcnow()
    # Backing off: not due yet, so nothing runs now.
    assert await run_pending_jobs(state) == 0

    async with state.db.write() as session:
        await session.execute(
            update(Job)
            .where(Job.id == job_id)
            .values(attempts=MAX_ATTEMPTS - 1, run_at=utcnow() - dt.timedelta(seconds=1))
        )
    assert await run_pending_jobs(state) == 1
    job = await _job(state, job_id)
    assert (job.state, job.attempts) == ("failed", MAX_ATTEMPTS)
    assert await run_pending_jobs(state) == 0


async def test_a_job_of_an_unknown_kind_fails_with_a_reason(app: FastAPI) -> None:
    state = state_of(app)
    job_id = await _enqueue(state, "test.nobody-handles-this", {})
    await run_pending_jobs(state)
    job = await _job(state, job_id)
    assert job.last_error is not None and "no handler" in job.last_error


async def test_a_job_whose_transaction_rolled_back_never_runs(app: FastAPI) -> None:
    state = state_of(app)
    with pytest.raises(RuntimeError):
        async with state.db.write() as session:
            enqueue(session, "test.record", {"n": 4})
            raise RuntimeError("the request failed")
    assert await run_pending_jobs(state) == 0
    assert calls == []


async def test_queue_stats_show_the_backlog(app: FastAPI) -> None:
    state = state_of(app)
    async with state.db.read() as session:
        empty = await queue_stats(session)
    assert empty.by_state == {"queued": 0, "running": 0, "done": 0, "failed": 0}
    assert empty.oldest_due_seconds == 0.0

    job_id = await _enqueue(state, "test.record", {"n": 5})
    await _enqueue(state, "test.record", {"n": 6})
    async with state.db.write() as session:
        await session.execute(
            update(Job).where(Job.id == job_id).values(run_at=utcnow() - dt.timedelta(minutes=2))
        )
    async with state.db.read() as session:
        waiting = await queue_stats(session)
    assert waiting.by_state["queued"] == 2
    assert 119 < waiting.oldest_due_seconds < 180

    await run_pending_jobs(state)
    async with state.db.read() as session:
        drained = await queue_stats(session)
    assert drained.by_state["done"] == 2
    assert drained.by_state["queued"] == 0


async def test_runners_working_at_once_run_each_job_once(app: FastAPI) -> None:
    state = state_of(app)
    async with state.db.write() as session:
        for n in range(30):
            enqueue(session, "test.record", {"n": n})

    counts = await asyncio.gather(*(run_pending_jobs(state) for _ in range(4)))

    assert sum(counts) == 30
    assert sorted(call["n"] for call in calls) == list(range(30))


async def test_jobs_leased_together_run_as_one_batch(app: FastAPI) -> None:
    state = state_of(app)
    assert "test.batched" in BATCH_HANDLERS
    async with state.db.write() as session:
        for n in range(5):
            enqueue(session, "test.batched", {"n": n})
        enqueue(session, "test.record", {"n": 99})

    assert await run_next_jobs(state, limit=10) == 6

    assert batches == [[0, 1, 2, 3, 4]]
    assert calls == [{"n": 99}]
    assert await _events(state) == [0, 1, 2, 3, 4]
    async with state.db.read() as session:
        states = (await session.scalars(select(Job.state))).all()
    assert states == ["done"] * 6
    assert await run_pending_jobs(state) == 0


async def test_a_batch_whose_runner_died_before_finishing_is_run_again_once(
    app: FastAPI,
) -> None:
    state = state_of(app)
    async with state.db.write() as session:
        for n in range(3):
            enqueue(session, "test.batched", {"n": n})
    async with state.db.write() as session:
        leases = await lease_jobs(session, duration=dt.timedelta(seconds=60), limit=10)
    assert len(leases) == 3

    # The runner plans the batch and dies while writing it: nothing it wrote is committed.
    writes = await batched(state, [lease.payload for lease in leases])
    with pytest.raises(RuntimeError):
        async with state.db.write() as session:
            await writes(session)
            raise RuntimeError("the process was killed")
    assert await _events(state) == []
    # While the leases hold, nobody else takes the jobs.
    assert await run_next_jobs(state) == 0

    async with state.db.write() as session:
        await session.execute(update(Job).values(locked_until=utcnow() - dt.timedelta(seconds=1)))
    assert await run_pending_jobs(state) == 3
    assert await _events(state) == [0, 1, 2]
    async with state.db.read() as session:
        jobs = (await session.scalars(select(Job))).all()
    assert {(job.state, job.attempts) for job in jobs} == {("done", 2)}


async def test_a_bad_job_in_a_batch_fails_alone(app: FastAPI) -> None:
    state = state_of(app)
    async with state.db.write() as session:
        for n in (1, -1, 2):
            enqueue(session, "test.batched", {"n": n})

    assert await run_next_jobs(state, limit=10) == 3

    # The batch failed as a whole, then each job ran by itself.
    assert batches == [[1, -1, 2], [1], [-1], [2]]
    assert await _events(state) == [1, 2]
    async with state.db.read() as session:
        outcome = {
            job.payload["n"]: job.state for job in (await session.scalars(select(Job))).all()
        }
    assert outcome == {1: "done", -1: "queued", 2: "done"}


async def test_batching_runners_working_at_once_run_each_job_once(app: FastAPI) -> None:
    state = state_of(app)
    async with state.db.write() as session:
        for n in range(40):
            enqueue(session, "test.batched", {"n": n})

    counts = await asyncio.gather(*(run_pending_jobs(state) for _ in range(4)))

    assert sum(counts) == 40
    assert sorted(n for batch in batches for n in batch) == list(range(40))
    assert await _events(state) == list(range(40))
