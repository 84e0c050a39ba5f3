"""Creating, listing and dismissing notifications."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from townsquare.api.errors import not_found
from townsquare.api.pagination import Page
from townsquare.db.base import utcnow
from townsquare.graph.sql import insert_or_ignore
from townsquare.ids import new_id
from townsquare.notifications.models import NOTIFICATION_TYPES, Notification
from townsquare.streaming.publish import publish
from townsquare.timelines.models import Marker


async def notify(
    session: AsyncSession,
    *,
    recipient_id: int,
    from_account_id: int,
    type: str,
    status_id: int | None = None,
    report_id: int | None = None,
) -> Notification | None:
    """Tell ``recipient_id`` about an event, unless they would not want to hear of it.

    Nothing is created for one's own actions, across a block, or from an account the recipient
    muted with notifications hidden. The same event notifies once however often it is reported.
    """
    from townsquare.graph.service import is_blocked_either_way, is_muting

    if type not in NOTIFICATION_TYPES:
        raise ValueError(f"unknown notification type {type!r}")
    if recipient_id == from_account_id:
        return None
    if await is_blocked_either_way(session, recipient_id, from_account_id):
        return None
    if await is_muting(session, recipient_id, from_account_id, notifications=True):
        return None

    same_event = select(Notification).where(
        Notification.account_id == recipient_id,
        Notification.from_account_id == from_account_id,
        Notification.type == type,
        Notification.status_id.is_(None)
        if status_id is None
        else Notification.status_id == status_id,
    )
    if await session.scalar(same_event) is not None:
        return None
    notification_id = new_id()
    inserted = await insert_or_ignore(
        session,
        Notification,
        {
            "id": notification_id,
            "account_id": recipient_id,
            "from_account_id": from_account_id,
            "type": type,
            "status_id": status_id,
            "report_id": report_id,
            "created_at": utcnow(),
        },
        ["account_id", "type", "from_account_id", "status_id"],
    )
    if not inserted:
        return None
    publish(session, f"user:{recipient_id}", "notification", {"notification_id": notification_id})
    return await session.get(Notification, notification_id)


@dataclass(frozen=True)
class NotificationFilter:
    types: Sequence[str] = ()
    exclude_types: Sequence[str] = ()
    account_id: int | None = None


async def list_notifications(
    session: AsyncSession,
    recipient_id: int,
    wanted: NotificationFilter,
    page: Page,
    *,
    silenced_senders: set[int] | None = None,
) -> list[Notification]:
    """One page of candidates, newest first; the caller still drops those it may not show."""
    query = select(Notification).where(Notification.account_id == recipient_id)
    if silenced_senders:
        query = query.where(Notification.from_account_id.not_in(silenced_senders))
    if wanted.types:
        query = query.where(Notification.type.in_(list(wanted.types)))
    if wanted.exclude_types:
        query = query.where(Notification.type.not_in(list(wanted.exclude_types)))
    if wanted.account_id is not None:
        query = query.where(Notification.from_account_id == wanted.account_id)
    rows = await session.scalars(page.apply(query, Notification.id))
    return page.finish(rows.all())


async def unread_count(session: AsyncSession, recipient_id: int, *, limit: int) -> int:
    """Notifications newer than the recipient's ``notifications`` read marker, up to ``limit``."""
    last_read = await session.scalar(
        select(Marker.last_read_id).where(
            Marker.account_id == recipient_id, Marker.timeline == "notifications"
        )
    )
    newer = (
        select(Notification.id)
        .where(Notification.account_id == recipient_id, Notification.id > (last_read or 0))
        .limit(limit)
        .subquery()
    )
    return await session.scalar(select(func.count()).select_from(newer)) or 0


async def get_notification(
    session: AsyncSession, recipient_id: int, notification_id: int
) -> Notification:
    found = await session.scalar(
        select(Notification).where(
            Notification.id == notification_id, Notification.account_id == recipient_id
        )
    )
    if found is None:
        raise not_found("Notification")
    return found


async def dismiss(session: AsyncSession, recipient_id: int, notification_id: int) -> None:
    removed = (
        await session.execute(
            delete(Notification)
            .where(Notification.id == notification_id, Notification.account_id == recipient_id)
            .returning(Notification.id)
            .execution_options(synchronize_session=False)
        )
    ).first()
    if removed is None:
        raise not_found("Notification")


async def clear(session: AsyncSession, recipient_id: int) -> None:
    await session.execute(
        delete(Notification)
        .where(Notification.account_id == recipient_id)
        .execution_options(synchronize_session=False)
    )
