"""The Notification entity, rendered in batches, and which notifications a viewer may be shown."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from townsquare.accounts.entities import account_entity, iso_time, load_accounts
from townsquare.accounts.models import Account
from townsquare.db.base import utcnow
from townsquare.graph.models import Mute
from townsquare.moderation.models import Report
from townsquare.notifications.models import Notification
from townsquare.privacy import blocked_either_way_ids, can_view_status, suspended_ids
from townsquare.state import AppState
from townsquare.statuses.entities import render_statuses
from townsquare.statuses.models import Status


async def silenced_sender_ids(session: AsyncSession, viewer_id: int) -> set[int]:
    """Senders whose notifications the viewer must not see now: blocked either way, suspended,
    or muted with notifications hidden (a mute may have been added after the notification)."""
    now = utcnow()
    muted = await session.scalars(
        select(Mute.target_account_id).where(
            Mute.account_id == viewer_id,
            Mute.hide_notifications.is_(True),
            or_(Mute.expires_at.is_(None), Mute.expires_at > now),
        )
    )
    return (
        set(muted) | await blocked_either_way_ids(session, viewer_id) | await suspended_ids(session)
    )


def _report_entity(report: Report, target: dict[str, Any] | None) -> dict[str, Any]:
    return {
        "id": str(report.id),
        "action_taken": report.action_taken_at is not None,
        "action_taken_at": iso_time(report.action_taken_at) if report.action_taken_at else None,
        "category": report.category,
        "comment": report.comment,
        "forwarded": report.forwarded,
        "created_at": iso_time(report.created_at),
        "status_ids": [str(i) for i in report.status_ids or []] or None,
        "rule_ids": [str(i) for i in report.rule_ids or []] or None,
        "target_account": target,
    }


# Favourites, reblogs and follows are grouped in /api/v2/notifications unless a client asks
# otherwise; everything else stands alone.
GROUPED_TYPES = ("favourite", "reblog", "follow")
GROUP_BUCKET_SECONDS = 24 * 3600


def group_key(notification: Notification, grouped_types: Sequence[str] = GROUPED_TYPES) -> str:
    """Notifications sharing a key are shown as one: the same kind of reaction to the same
    status (or new followers) within a day."""
    if notification.type not in grouped_types:
        return f"ungrouped-{notification.id}"
    bucket = int(notification.created_at.timestamp()) // GROUP_BUCKET_SECONDS
    if notification.status_id is not None:
        return f"{notification.type}-{notification.status_id}-{bucket}"
    return f"{notification.type}-{bucket}"


@dataclass
class NotificationBatch:
    """Notifications the viewer may see, and what they refer to, loaded together."""

    notifications: list[Notification]
    accounts: dict[int, Account]
    statuses: dict[int, dict[str, Any]]
    reports: dict[int, dict[str, Any]]


async def load_batch(
    session: AsyncSession, state: AppState, viewer_id: int, notifications: Sequence[Notification]
) -> NotificationBatch:
    """Leave out notifications the viewer may no longer see: from a sender now hidden from
    them, about a status they cannot see, or about something since deleted."""
    silenced = await silenced_sender_ids(session, viewer_id)
    candidates = [n for n in notifications if n.from_account_id not in silenced]

    status_ids = {n.status_id for n in candidates if n.status_id is not None}
    statuses = {
        status.id: status
        for status in await session.scalars(select(Status).where(Status.id.in_(status_ids)))
    }
    visible_statuses = [
        status for status in statuses.values() if await can_view_status(session, viewer_id, status)
    ]
    rendered_statuses = {
        int(entity["id"]): entity
        for entity in await render_statuses(session, state, viewer_id, visible_statuses)
    }

    report_ids = {n.report_id for n in candidates if n.report_id is not None}
    reports = {
        report.id: report
        for report in await session.scalars(select(Report).where(Report.id.in_(report_ids)))
    }
    account_ids = {n.from_account_id for n in candidates}
    account_ids |= {report.target_account_id for report in reports.values()}
    accounts = await load_accounts(session, account_ids)
    rendered_reports = {}
    for report in reports.values():
        target = accounts.get(report.target_account_id)
        rendered_reports[report.id] = _report_entity(
            report, account_entity(target, state.settings) if target else None
        )

    kept = [
        n
        for n in candidates
        if n.from_account_id in accounts
        and (n.status_id is None or n.status_id in rendered_statuses)
        and (n.report_id is None or n.report_id in rendered_reports)
    ]
    return NotificationBatch(kept, accounts, rendered_statuses, rendered_reports)


async def render_notifications(
    session: AsyncSession, state: AppState, viewer_id: int, notifications: Sequence[Notification]
) -> list[dict[str, Any]]:
    """Notification entities in the order given, for those the viewer may still see."""
    batch = await load_batch(session, state, viewer_id, notifications)
    result = []
    for notification in batch.notifications:
        entity: dict[str, Any] = {
            "id": str(notification.id),
            "type": notification.type,
            "created_at": iso_time(notification.created_at),
            "group_key": group_key(notification),
            "account": account_entity(batch.accounts[notification.from_account_id], state.settings),
        }
        if notification.status_id is not None:
            entity["status"] = batch.statuses[notification.status_id]
        if notification.report_id is not None:
            entity["report"] = batch.reports[notification.report_id]
        result.append(entity)
    return result
