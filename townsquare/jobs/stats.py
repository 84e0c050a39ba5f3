"""How the job queue is doing, for metrics and health pages: a backlog that grows means the
runners cannot keep up (or are not running)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from townsquare.db.base import utcnow
from townsquare.jobs.models import JOB_STATES, Job


@dataclass(frozen=True)
class QueueStats:
    by_state: dict[str, int]
    # Seconds the longest-waiting due job has waited; 0 when nothing is due.
    oldest_due_seconds: float


async def queue_stats(session: AsyncSession) -> QueueStats:
    now = utcnow()
    rows = await session.execute(select(Job.state, func.count()).group_by(Job.state))
    by_state = dict.fromkeys(JOB_STATES, 0)
    by_state.update({row[0]: int(row[1]) for row in rows})
    oldest = await session.scalar(
        select(func.min(Job.run_at)).where(Job.state == "queued", Job.run_at <= now)
    )
    waited = max(0.0, (now - oldest).total_seconds()) if oldest is not None else 0.0
    return QueueStats(by_state=by_state, oldest_due_seconds=waited)
