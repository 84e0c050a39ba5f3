"""What other parts of Townsquare learn when a status is written, all in the same transaction.

Notifications, fan-out jobs, conversations and streaming events are rows written beside the
status, so they exist exactly when the status does.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from townsquare.conversations.service import record_direct_status
from townsquare.notifications.service import notify
from townsquare.privacy import can_view_status, is_blocked_either_way
from townsquare.statuses.models import Status, StatusTag, Tag
from townsquare.streaming.publish import publish
from townsquare.timelines.fanout import enqueue_fanout
from townsquare.timelines.models import HomeFeedEntry


async def notify_about(
    session: AsyncSession,
    status: Status,
    recipient_ids: Iterable[int],
    type: str,
    *,
    from_account_id: int | None = None,
) -> None:
    """Notify each recipient who may see ``status`` and is on speaking terms with the sender
    (the status's author unless ``from_account_id`` says otherwise)."""
    sender = status.account_id if from_account_id is None else from_account_id
    for recipient_id in dict.fromkeys(recipient_ids):
        if recipient_id == sender:
            continue
        if await is_blocked_either_way(session, recipient_id, sender):
            continue
        if not await can_view_status(session, recipient_id, status):
            continue
        await notify(
            session,
            recipient_id=recipient_id,
            from_account_id=sender,
            type=type,
            status_id=status.id,
        )


async def announce_new_status(
    session: AsyncSession, status: Status, participant_ids: list[int]
) -> None:
    enqueue_fanout(session, status)
    if status.visibility == "direct":
        await record_direct_status(session, status, participant_ids)


async def _audience_channels(session: AsyncSession, status: Status) -> list[str]:
    """Every stream that may be showing ``status``: its author's, the home feeds holding it and,
    for public statuses, the public and hashtag streams."""
    channels = [f"user:{status.account_id}"]
    holders = await session.scalars(
        select(HomeFeedEntry.account_id).where(HomeFeedEntry.status_id == status.id)
    )
    channels += [f"user:{account_id}" for account_id in holders]
    if status.visibility == "public":
        channels += ["public", "public:local"]
        tags = await session.scalars(
            select(Tag.name_key)
            .join(StatusTag, StatusTag.tag_id == Tag.id)
            .where(StatusTag.status_id == status.id)
        )
        channels += [f"hashtag:{name}" for name in tags]
    return list(dict.fromkeys(channels))


async def announce_edit(session: AsyncSession, status: Status) -> None:
    for channel in await _audience_channels(session, status):
        publish(session, channel, "status.update", {"status_id": status.id})


def announce_delete(session: AsyncSession, status_ids: Iterable[int]) -> None:
    for status_id in status_ids:
        publish(session, "deletes", "delete", {"status_id": status_id})
