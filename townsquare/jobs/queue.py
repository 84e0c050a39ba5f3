"""Enqueueing jobs and registering their handlers.

``enqueue`` writes the job in the caller's transaction, so a job exists if and only if the work
that asked for it was committed (a transactional outbox). Once that transaction commits, the job
runners of this process are woken so the job starts at once instead of at the next poll.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from townsquare.db.base import utcnow
from townsquare.jobs.models import Job

# A handler gets the app state and the job's payload, and must be idempotent.
Handler = Callable[[Any, dict[str, Any]], Awaitable[None]]
HANDLERS: dict[str, Handler] = {}

# Callbacks of the runner pools living in this process, called after a commit that enqueued.
_wake_listeners: set[Callable[[], None]] = set()


def handler(kind: str) -> Callable[[Handler], Handler]:
    def register(function: Handler) -> Handler:
        HANDLERS[kind] = function
        return function

    return register


def enqueue(
    session: AsyncSession, kind: str, payload: dict[str, Any], *, delay: float = 0.0
) -> Job:
    job = Job(kind=kind, payload=payload, run_at=utcnow() + dt.timedelta(seconds=delay))
    session.add(job)
    _wake_after_commit(session.sync_session)
    return job


def add_wake_listener(listener: Callable[[], None]) -> None:
    _wake_listeners.add(listener)


def remove_wake_listener(listener: Callable[[], None]) -> None:
    _wake_listeners.discard(listener)


def wake_runners() -> None:
    for listener in list(_wake_listeners):
        listener()


def _wake_on_commit(_session: Session) -> None:
    wake_runners()


def _wake_after_commit(session: Session) -> None:
    # Sessions live for one request or job, so the listener goes away with them; a later commit
    # in the same session only wakes the runners once more, which costs one empty poll.
    if not event.contains(session, "after_commit", _wake_on_commit):
        event.listen(session, "after_commit", _wake_on_commit)
