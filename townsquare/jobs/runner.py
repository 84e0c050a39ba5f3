"""Job runners: a few asyncio tasks per worker process that lease jobs and run their handlers.

Runners wake as soon as a transaction in this process enqueues a job, and otherwise poll the
table (jobs enqueued by other processes or nodes, retries whose backoff ran out, leases left by a
runner that died).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import time

from sqlalchemy import exists, select

from townsquare.db.base import utcnow
from townsquare.db.group_commit import group_commit
from townsquare.jobs.lease import (
    MAX_ATTEMPTS,
    Lease,
    delete_old_done_jobs,
    fail_job,
    finish_job,
    finish_jobs,
    has_runnable_job,
    lease_jobs,
)
from townsquare.jobs.models import Job
from townsquare.jobs.periodic import PeriodicSchedule, periodic
from townsquare.jobs.queue import (
    BATCH_HANDLERS,
    HANDLERS,
    add_wake_listener,
    remove_wake_listener,
)
from townsquare.state import AppState

log = logging.getLogger("townsquare.jobs")

LEASE_DURATION = dt.timedelta(seconds=60)
POLL_SECONDS = 0.2
# Jobs one runner leases at once. Under a backlog, jobs of a kind with a batch handler then cost
# two write transactions per batch (lease; writes and finish) instead of three each; when the
# queue is short a runner takes what there is, so a lone job is not held back.
BATCH_SIZE = 32


@periodic("jobs.delete_done", every_seconds=300)
async def delete_done_jobs(state: AppState) -> None:
    async with state.db.write() as session:
        await delete_old_done_jobs(session)


async def run_leased_job(state: AppState, lease: Lease) -> bool:
    """Run one leased job and record the outcome. True when it succeeded."""
    handler = HANDLERS.get(lease.kind)
    error: str | None = None
    if lease.attempts > MAX_ATTEMPTS:
        error = "the job was interrupted too many times"
    elif handler is None:
        error = f"no handler for job kind {lease.kind!r}"
    else:
        try:
            await handler(state, lease.payload)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.exception(
                "job %s (%s) failed on attempt %s", lease.job_id, lease.kind, lease.attempts
            )
            error = f"{type(exc).__name__}: {exc}"
    async with state.db.write() as session:
        if error is None:
            await finish_job(session, lease)
        else:
            await fail_job(session, lease, error)
    return error is None


async def run_leased_batch(state: AppState, kind: str, leases: list[Lease]) -> int:
    """Run leased jobs of one kind with its batch handler; returns how many succeeded.

    The handler reads without holding the write lock; then one transaction makes the writes of
    every job and marks them done. A crash before that commit leaves all of them to be leased
    again when their lease runs out; a crash after it leaves nothing to redo. If the batch fails,
    each job runs alone, so a bad one fails by itself.
    """
    try:
        writes = await BATCH_HANDLERS[kind](state, [lease.payload for lease in leases])
        # In a savepoint of the posts' grouped transaction (on SQLite): one commit, and one wait
        # for the disk, for the batch and the posts written meanwhile.
        async with group_commit(state.extras, state.db).write() as session:
            await writes(session)
            await finish_jobs(session, leases)
    except asyncio.CancelledError:
        raise
    except Exception:
        log.exception("a batch of %s %s jobs failed; running them one by one", len(leases), kind)
        return sum([await run_leased_job(state, lease) for lease in leases])
    return len(leases)


async def run_leases(state: AppState, leases: list[Lease]) -> None:
    """Run what one runner leased: jobs with a batch handler together, the others alone."""
    batches: dict[str, list[Lease]] = {}
    for lease in leases:
        if lease.kind in BATCH_HANDLERS and lease.attempts <= MAX_ATTEMPTS:
            batches.setdefault(lease.kind, []).append(lease)
        else:
            await run_leased_job(state, lease)
    for kind, batch in batches.items():
        await run_leased_batch(state, kind, batch)


async def run_next_jobs(
    state: AppState, *, limit: int = BATCH_SIZE, lease_duration: dt.timedelta = LEASE_DURATION
) -> int:
    """Lease up to ``limit`` runnable jobs and run them; returns how many there were."""
    async with state.db.write() as session:
        leases = await lease_jobs(session, duration=lease_duration, limit=limit)
    if leases:
        await run_leases(state, leases)
    return len(leases)


async def run_next_job(state: AppState, *, lease_duration: dt.timedelta = LEASE_DURATION) -> bool:
    """Lease and run one runnable job. False when there was none."""
    return await run_next_jobs(state, limit=1, lease_duration=lease_duration) > 0


async def run_pending_jobs(state: AppState, *, wait_seconds: float = 30.0) -> int:
    """Run every job that is due now, here and until none is left; returns how many ran.

    Jobs held by this process's background runners are waited for, so the caller sees their
    effects too. Meant for tests and the command line, instead of sleeping.
    """
    deadline = time.monotonic() + wait_seconds
    ran = 0
    while time.monotonic() < deadline:
        leased = await run_next_jobs(state)
        if leased:
            ran += leased
            continue
        if not await _jobs_in_flight(state):
            break
        await asyncio.sleep(0.01)
    return ran


async def _jobs_in_flight(state: AppState) -> bool:
    async with state.db.read() as session:
        return bool(
            await session.scalar(
                select(
                    exists().where(
                        Job.state == "running",
                        Job.locked_until >= utcnow(),
                    )
                )
            )
        )


class JobRunners:
    """The runners of one process: started with the app, stopped with it."""

    def __init__(self, state: AppState, count: int) -> None:
        self.state = state
        self.count = count
        self._wake = asyncio.Event()
        self._stopping = False
        self._tasks: list[asyncio.Task[None]] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._schedule = PeriodicSchedule()
        self._leasing = asyncio.Lock()

    def _poke(self) -> None:
        # Called after a commit, possibly from another thread; the event belongs to our loop.
        if self._loop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._wake.set)

    def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        add_wake_listener(self._poke)
        self._tasks = [
            asyncio.create_task(self._run(number), name=f"job-runner-{number}")
            for number in range(self.count)
        ]

    async def stop(self, *, grace: float = 5.0) -> None:
        self._stopping = True
        remove_wake_listener(self._poke)
        self._wake.set()
        if not self._tasks:
            return
        _done, pending = await asyncio.wait(self._tasks, timeout=grace)
        for task in pending:
            task.cancel()
        for task in pending:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []

    async def _run(self, number: int) -> None:
        while not self._stopping:
            # Cleared before looking, so a wake-up during the look is not lost.
            self._wake.clear()
            try:
                worked = await self._work_once(number)
            except asyncio.CancelledError:
                raise
            except Exception:
                # The database may be failing over; back off and try again.
                log.exception("job runner %s could not reach the job table", number)
                worked = False
                await asyncio.sleep(1.0)
            if worked or self._stopping:
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=POLL_SECONDS)

    async def _work_once(self, number: int) -> bool:
        if number == 0:
            await self._schedule.run_due(self.state)
        # A commit wakes every runner of the process; one at a time looks and leases, so the
        # others see the jobs already taken with a read instead of an empty write transaction
        # (on SQLite a write transaction waits for the one write lock, like posts do).
        async with self._leasing:
            async with self.state.db.read() as session:
                if not await has_runnable_job(session):
                    return False
            async with group_commit(self.state.extras, self.state.db).write() as session:
                leases = await lease_jobs(session, duration=LEASE_DURATION, limit=BATCH_SIZE)
        if not leases:
            return False
        await run_leases(self.state, leases)
        return True
