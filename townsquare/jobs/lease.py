"""Taking a job for one runner, and recording how it ended.

A lease is one atomic UPDATE: PostgreSQL picks the row with ``FOR UPDATE SKIP LOCKED`` so
concurrent runners never wait on each other; SQLite serialises writers, and the re-check of the
state in the outer WHERE keeps a second claimer from taking a row the first already took. A
runner that dies holds its job only until ``locked_until``; after that any runner takes it again.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Table, and_, delete, exists, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from townsquare.db.base import utcnow
from townsquare.jobs.models import Job

MAX_ATTEMPTS = 6
BACKOFF_BASE_SECONDS = 2.0
BACKOFF_MAX_SECONDS = 600.0
KEEP_DONE = dt.timedelta(hours=1)
# Leases and finishes are written to the table, not through the ORM: every batch of jobs makes
# two of them, and the ORM's bulk UPDATE (evaluating each statement's entities and options)
# cost more CPU than the statements.
_JOBS: Table = Job.__table__  # type: ignore[assignment]


@dataclass(frozen=True)
class Lease:
    job_id: int
    kind: str
    payload: dict[str, Any]
    attempts: int
    locked_until: dt.datetime


def _runnable(now: dt.datetime) -> ColumnElement[bool]:
    jobs = _JOBS.c
    return or_(
        and_(jobs.state == "queued", jobs.run_at <= now),
        and_(jobs.state == "running", jobs.locked_until < now),
    )


async def has_runnable_job(session: AsyncSession) -> bool:
    """A cheap read, so idle runners poll without taking the write lock."""
    return bool(await session.scalar(select(exists().where(_runnable(utcnow())))))


async def lease_jobs(
    session: AsyncSession, *, duration: dt.timedelta, limit: int = 1
) -> list[Lease]:
    """Take up to ``limit`` runnable jobs, oldest first, with one statement.

    All of them share one ``locked_until``, so the runner can finish them with one statement.
    """
    now = utcnow()
    until = now + duration
    jobs = _JOBS.c
    # Picked once, in a CTE PostgreSQL must materialise: as a subquery of ``IN`` it could
    # run again while the update went on, and a lease of 32 took 37 jobs (all there were).
    candidates = (
        select(jobs.id)
        .where(_runnable(now))
        .order_by(jobs.run_at, jobs.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
        .cte("picked")
        .prefix_with("MATERIALIZED", dialect="postgresql")
    )
    statement = (
        update(_JOBS)
        .where(jobs.id.in_(select(candidates.c.id)), _runnable(now))
        .values(state="running", locked_until=until, attempts=jobs.attempts + 1)
        .returning(jobs.id, jobs.kind, jobs.payload, jobs.attempts)
    )
    rows = (await session.execute(statement)).all()
    leases = [
        Lease(
            job_id=row.id,
            kind=row.kind,
            payload=dict(row.payload),
            attempts=row.attempts,
            locked_until=until,
        )
        for row in rows
    ]
    # RETURNING gives no order; run the oldest first.
    leases.sort(key=lambda lease: lease.job_id)
    return leases


async def lease_next_job(session: AsyncSession, *, duration: dt.timedelta) -> Lease | None:
    leases = await lease_jobs(session, duration=duration, limit=1)
    return leases[0] if leases else None


def _still_ours(lease: Lease) -> ColumnElement[bool]:
    # A runner whose lease ran out may finish after another runner took the job; only the
    # current holder records the outcome.
    return and_(
        Job.id == lease.job_id, Job.state == "running", Job.locked_until == lease.locked_until
    )


async def finish_job(session: AsyncSession, lease: Lease) -> None:
    await finish_jobs(session, [lease])


async def finish_jobs(session: AsyncSession, leases: Sequence[Lease]) -> set[int]:
    """Mark the jobs done; returns the ids of those this runner still held."""
    finished: set[int] = set()
    by_deadline: dict[dt.datetime, list[int]] = {}
    for lease in leases:
        by_deadline.setdefault(lease.locked_until, []).append(lease.job_id)
    for until, job_ids in by_deadline.items():
        jobs = _JOBS.c
        rows = await session.execute(
            update(_JOBS)
            .where(jobs.id.in_(job_ids), jobs.state == "running", jobs.locked_until == until)
            .values(state="done", locked_until=None, last_error=None)
            .returning(jobs.id)
        )
        finished.update(rows.scalars())
    return finished


def backoff(attempts: int) -> dt.timedelta:
    return dt.timedelta(seconds=min(BACKOFF_BASE_SECONDS**attempts, BACKOFF_MAX_SECONDS))


async def fail_job(session: AsyncSession, lease: Lease, error: str) -> str:
    """Queue the job again after a backoff, or give up after ``MAX_ATTEMPTS``. Returns the state."""
    if lease.attempts >= MAX_ATTEMPTS:
        state, run_at = "failed", None
    else:
        state, run_at = "queued", utcnow() + backoff(lease.attempts)
    values: dict[str, Any] = {"state": state, "locked_until": None, "last_error": error[:4000]}
    if run_at is not None:
        values["run_at"] = run_at
    await session.execute(
        update(Job)
        .where(_still_ours(lease))
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    return state


async def delete_old_done_jobs(session: AsyncSession) -> None:
    await session.execute(
        delete(Job)
        .where(Job.state == "done", Job.created_at < utcnow() - KEEP_DONE)
        .execution_options(synchronize_session=False)
    )
