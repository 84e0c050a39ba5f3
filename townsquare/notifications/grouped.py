"""``/api/v2/notifications``: notifications grouped as Mastodon 4.3+ clients expect.

A page of notifications is read as in v1 and folded by :func:`group_key`; the accounts and
statuses the groups refer to are sent once, beside the groups.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from fastapi import APIRouter, Depends, Request, Response
from pydantic import BaseModel, Field, field_validator
from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from townsquare.accounts.entities import account_entity, iso_time
from townsquare.api.auth import Viewer, user
from townsquare.api.errors import not_found
from townsquare.api.pagination import link_header, page_params
from townsquare.api.params import as_id, as_list, parse, read_params
from townsquare.notifications import service
from townsquare.notifications.entities import (
    GROUP_BUCKET_SECONDS,
    GROUPED_TYPES,
    NotificationBatch,
    group_key,
    load_batch,
    silenced_sender_ids,
)
from townsquare.notifications.models import NOTIFICATION_TYPES, Notification
from townsquare.state import AppState, app_state

router = APIRouter()

SAMPLE_ACCOUNTS = 8


class GroupedQuery(BaseModel):
    types: list[str] = Field(default_factory=list, max_length=50)
    exclude_types: list[str] = Field(default_factory=list, max_length=50)
    grouped_types: list[str] | None = Field(default=None, max_length=50)
    account_id: str | None = None

    @field_validator("types", "exclude_types", "grouped_types", mode="before")
    @classmethod
    def _listify(cls, value: Any) -> list[Any] | None:
        return None if value is None else as_list(value)


def _groups(
    batch: NotificationBatch, grouped_types: Sequence[str]
) -> list[tuple[str, list[Notification]]]:
    """Groups in order of their newest notification; members newest first."""
    groups: dict[str, list[Notification]] = {}
    for notification in batch.notifications:
        groups.setdefault(group_key(notification, grouped_types), []).append(notification)
    return list(groups.items())


def _group_entity(
    key: str, members: list[Notification], batch: NotificationBatch
) -> dict[str, Any]:
    newest = members[0]
    senders = list(dict.fromkeys(n.from_account_id for n in members))
    entity: dict[str, Any] = {
        "group_key": key,
        "notifications_count": len(members),
        "type": newest.type,
        "most_recent_notification_id": str(newest.id),
        "page_min_id": str(min(n.id for n in members)),
        "page_max_id": str(newest.id),
        "latest_page_notification_at": iso_time(newest.created_at),
        "sample_account_ids": [str(i) for i in senders[:SAMPLE_ACCOUNTS]],
        "status_id": str(newest.status_id) if newest.status_id is not None else None,
    }
    if newest.report_id is not None:
        entity["report"] = batch.reports[newest.report_id]
    return entity


def _grouped_response(
    state: AppState, batch: NotificationBatch, grouped_types: Sequence[str]
) -> dict[str, Any]:
    groups = _groups(batch, grouped_types)
    entities = [_group_entity(key, members, batch) for key, members in groups]
    account_ids = dict.fromkeys(int(i) for g in entities for i in g["sample_account_ids"])
    status_ids = dict.fromkeys(int(g["status_id"]) for g in entities if g["status_id"])
    return {
        "accounts": [account_entity(batch.accounts[i], state.settings) for i in account_ids],
        "statuses": [batch.statuses[i] for i in status_ids],
        "notification_groups": entities,
    }


@router.get("/api/v2/notifications")
async def grouped_notifications(
    request: Request, response: Response, viewer: Viewer = Depends(user("read:notifications"))
) -> dict[str, Any]:
    actor = viewer.require_account()
    query = parse(GroupedQuery, await read_params(request))
    page = page_params(request, default=40, maximum=80)
    grouped_types = GROUPED_TYPES if query.grouped_types is None else tuple(query.grouped_types)
    types = [t for t in query.types if t in NOTIFICATION_TYPES]
    if query.types and not types:
        return {"accounts": [], "statuses": [], "notification_groups": []}
    wanted = service.NotificationFilter(
        types=types,
        exclude_types=[t for t in query.exclude_types if t in NOTIFICATION_TYPES],
        account_id=as_id(query.account_id) if query.account_id else None,
    )
    state = app_state(request)
    async with state.db.read() as session:
        silenced = await silenced_sender_ids(session, actor.id)
        notifications = await service.list_notifications(
            session, actor.id, wanted, page, silenced_senders=silenced
        )
        batch = await load_batch(session, state, actor.id, notifications)
    link_header(request, response, [n.id for n in notifications])
    return _grouped_response(state, batch, grouped_types)


async def _members_of_group(
    session: AsyncSession, recipient_id: int, key: str
) -> list[Notification]:
    """The recipient's notifications under ``key``, newest first; an unreadable key is unknown."""
    query = select(Notification).where(Notification.account_id == recipient_id)
    kind, _, rest = key.partition("-")
    parts = rest.split("-")
    try:
        numbers = [int(part) for part in parts]
    except ValueError:
        raise not_found("Notification group") from None
    if kind == "ungrouped" and len(numbers) == 1:
        query = query.where(Notification.id == numbers[0])
    elif kind in GROUPED_TYPES and len(numbers) in (1, 2):
        bucket = numbers[-1]
        start = dt.datetime.fromtimestamp(bucket * GROUP_BUCKET_SECONDS, dt.UTC)
        query = query.where(
            Notification.type == kind,
            Notification.created_at >= start,
            Notification.created_at < start + dt.timedelta(seconds=GROUP_BUCKET_SECONDS),
        )
        if len(numbers) == 2:
            query = query.where(Notification.status_id == numbers[0])
        else:
            query = query.where(Notification.status_id.is_(None))
    else:
        raise not_found("Notification group")
    members = list((await session.scalars(query.order_by(Notification.id.desc()))).all())
    if not members:
        raise not_found("Notification group")
    return members


@router.get("/api/v2/notifications/unread_count")
async def grouped_unread_count(
    request: Request, viewer: Viewer = Depends(user("read:notifications"))
) -> dict[str, int]:
    actor = viewer.require_account()
    async with app_state(request).db.read() as session:
        count = await service.unread_count(session, actor.id, limit=1000)
    return {"count": count}


@router.get("/api/v2/notifications/{key}")
async def notification_group(
    key: str, request: Request, viewer: Viewer = Depends(user("read:notifications"))
) -> dict[str, Any]:
    actor = viewer.require_account()
    state = app_state(request)
    async with state.db.read() as session:
        members = await _members_of_group(session, actor.id, key)
        batch = await load_batch(session, state, actor.id, members)
    if not batch.notifications:
        raise not_found("Notification group")
    # The key was read from the URL, so it is the one to echo, whatever grouping made it.
    entity = _group_entity(key, batch.notifications, batch)
    response = _grouped_response(state, batch, GROUPED_TYPES)
    response["notification_groups"] = [entity]
    return response


@router.get("/api/v2/notifications/{key}/accounts")
async def notification_group_accounts(
    key: str, request: Request, viewer: Viewer = Depends(user("read:notifications"))
) -> list[dict[str, Any]]:
    actor = viewer.require_account()
    state = app_state(request)
    async with state.db.read() as session:
        members = await _members_of_group(session, actor.id, key)
        batch = await load_batch(session, state, actor.id, members)
    senders = dict.fromkeys(n.from_account_id for n in batch.notifications)
    return [account_entity(batch.accounts[i], state.settings) for i in senders]


@router.post("/api/v2/notifications/{key}/dismiss")
async def dismiss_group(
    key: str, request: Request, viewer: Viewer = Depends(user("write:notifications"))
) -> dict[str, Any]:
    actor = viewer.require_account()
    async with app_state(request).db.write() as session:
        members = await _members_of_group(session, actor.id, key)
        await session.execute(
            delete(Notification)
            .where(Notification.id.in_([n.id for n in members]))
            .execution_options(synchronize_session=False)
        )
    return {}
