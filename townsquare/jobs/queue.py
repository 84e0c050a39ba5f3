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

# What a batch handler returns: the writes of its jobs, which the runner makes in the same
# transaction that marks those jobs done (so they happen exactly when the jobs end).
Writes = Callable[[AsyncSession], Awaitable[None]]
# A batch handler gets the app state and the payloads of several jobs of its kind; it reads what
# it needs outside any write transaction and returns their writes. It must be idempotent too.
BatchHandler = Callable[[Any, list[dict[str, Any]]], Awaitable[Writes]]
BATCH_HANDLERS: dict[str, BatchHandler] = {}

# Callbacks of the runner pools living in this process, called after a commit that enqueued.
_wake_listeners: set[Callable[[], None]] = set()


def handler(kind: str) -> Callable[[Handler], Handler]:
    def register(function: Handler) -> Handler:
        HANDLERS[kind] = function
        return function

    return register


def batch_handler(kind: str) -> Callable[[BatchHandler], BatchHandler]:
    """Register how to run several jobs of ``kind`` at once, beside its ``@handler``.

    The runner uses the batch form for the jobs of ``kind`` it leased together, and falls back
    to the ``@handler`` one job at a time when a batch fails, so one bad job fails alone.
    """

    def register(function: BatchHandler) -> BatchHandler:
        BATCH_HANDLERS[kind] = function
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
