"""Publishing streaming events: a row in the caller's transaction (delivered only if it commits).

Once that transaction commits, the event tailers of this process are woken so the event goes
out at once instead of at the next poll; other processes see it at their next poll.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import orjson
from sqlalchemy import Table, event, insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from townsquare.streaming.models import StreamEvent

_commit_listeners: set[Callable[[], None]] = set()

# One row for an event bound to many accounts' user streams (a status fanned out to its readers'
# home feeds): its payload lists them under ``accounts``, and the tailers hand it on as one event
# on each ``user:<id>`` channel. One row instead of one per reader: writing and tailing a row per
# follower was most of a fan-out's cost.
ACCOUNTS_CHANNEL = "users"


def publish(session: AsyncSession, channel: str, event: str, payload: Any) -> None:
    """Queue ``event`` on ``channel``; ``payload`` is JSON-serialisable or already a string."""
    body = payload if isinstance(payload, str) else orjson.dumps(payload).decode()
    session.add(StreamEvent(channel=channel, event=event, payload=body))
    _wake_after_commit(session.sync_session)


# Into the table, not through the ORM: its unit of work and bulk inserts cost more CPU than the
# INSERTs (every fan-out batch publishes a few rows per status).
_EVENTS: Table = StreamEvent.__table__  # type: ignore[assignment]
_INSERT_EVENT = insert(_EVENTS)


async def publish_many(
    session: AsyncSession, channels: Sequence[str], event: str, payload: Any
) -> None:
    """Queue the same ``event`` on each of ``channels`` with one INSERT (fan-out to followers)."""
    if not channels:
        return
    body = payload if isinstance(payload, str) else orjson.dumps(payload).decode()
    await session.execute(
        _INSERT_EVENT,
        [{"channel": channel, "event": event, "payload": body} for channel in channels],
    )
    _wake_after_commit(session.sync_session)


# An event row to publish: its channel, its event and its payload.
EventRow = tuple[str, str, Any]


async def publish_to_accounts(
    session: AsyncSession, account_ids: Sequence[int], event: str, payload: dict[str, Any]
) -> None:
    """Queue ``event`` on the ``user:<id>`` channel of each of ``account_ids``, in one row."""
    await publish_rows(session, [accounts_row(account_ids, event, payload)])


def accounts_row(account_ids: Sequence[int], event: str, payload: dict[str, Any]) -> EventRow:
    """The row of :func:`publish_to_accounts`, for :func:`publish_rows`."""
    return (ACCOUNTS_CHANNEL, event, {**payload, "accounts": list(account_ids)})


async def publish_rows(session: AsyncSession, rows: Sequence[EventRow]) -> None:
    """Queue events, each on its channel, with one INSERT for all of them (a fan-out batch's
    events for all its statuses). Rows addressed to no account are left out."""
    values = [
        {
            "channel": channel,
            "event": event,
            "payload": payload if isinstance(payload, str) else orjson.dumps(payload).decode(),
        }
        for channel, event, payload in rows
        if channel != ACCOUNTS_CHANNEL or payload.get("accounts")
    ]
    if not values:
        return
    await session.execute(_INSERT_EVENT, values)
    _wake_after_commit(session.sync_session)


def addressed_channels(
    channel: str, payload: Any, listened: Callable[[str], bool] | None = None
) -> list[tuple[str, Any]]:
    """The channels an event row is for, each with the payload its subscribers get; with
    ``listened``, of the readers' ``user:<id>`` channels only those it accepts (a status's
    readers are mostly not connected to this process, or at all)."""
    if channel != ACCOUNTS_CHANNEL or not isinstance(payload, dict):
        return [(channel, payload)]
    readers = (f"user:{account_id}" for account_id in payload.get("accounts") or ())
    wanted = [reader for reader in readers if listened is None or listened(reader)]
    if not wanted:
        return []
    shared = {key: value for key, value in payload.items() if key != "accounts"}
    return [(reader, shared) for reader in wanted]


def add_commit_listener(listener: Callable[[], None]) -> None:
    _commit_listeners.add(listener)


def remove_commit_listener(listener: Callable[[], None]) -> None:
    _commit_listeners.discard(listener)


def _wake_on_commit(_session: Session) -> None:
    for listener in list(_commit_listeners):
        listener()


def _wake_after_commit(session: Session) -> None:
    if not event.contains(session, "after_commit", _wake_on_commit):
        event.listen(session, "after_commit", _wake_on_commit)
