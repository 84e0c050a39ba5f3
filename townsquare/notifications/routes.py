"""``/api/v1/notifications``: listing, reading one, dismissing and clearing."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request, Response
from pydantic import BaseModel, Field, field_validator

from townsquare.api.auth import Viewer, user
from townsquare.api.errors import not_found
from townsquare.api.pagination import link_header, page_params
from townsquare.api.params import as_id, as_list, parse, read_params
from townsquare.notifications import service
from townsquare.notifications.entities import render_notifications, silenced_sender_ids
from townsquare.notifications.grouped import router as grouped_router
from townsquare.notifications.models import NOTIFICATION_TYPES
from townsquare.state import app_state

router = APIRouter()
router.include_router(grouped_router)


class NotificationQuery(BaseModel):
    types: list[str] = Field(default_factory=list, max_length=50)
    exclude_types: list[str] = Field(default_factory=list, max_length=50)
    account_id: str | None = None

    @field_validator("types", "exclude_types", mode="before")
    @classmethod
    def _listify(cls, value: Any) -> list[Any]:
        return as_list(value)


class UnreadCountQuery(BaseModel):
    limit: int = Field(default=100, ge=1, le=1000)


@router.get("/api/v1/notifications")
async def list_notifications(
    request: Request, response: Response, viewer: Viewer = Depends(user("read:notifications"))
) -> list[dict[str, Any]]:
    actor = viewer.require_account()
    query = parse(NotificationQuery, await read_params(request))
    page = page_params(request, default=40, maximum=80)
    # Types this server does not know are ignored, as Mastodon does; asking only for unknown
    # types therefore matches nothing.
    types = [t for t in query.types if t in NOTIFICATION_TYPES]
    if query.types and not types:
        return []
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
        rendered = await render_notifications(session, state, actor.id, notifications)
    link_header(request, response, [n.id for n in notifications])
    return rendered


@router.get("/api/v1/notifications/unread_count")
async def unread_count(
    request: Request, viewer: Viewer = Depends(user("read:notifications"))
) -> dict[str, int]:
    actor = viewer.require_account()
    query = parse(UnreadCountQuery, await read_params(request))
    async with app_state(request).db.read() as session:
        count = await service.unread_count(session, actor.id, limit=query.limit)
    return {"count": count}


@router.post("/api/v1/notifications/clear")
async def clear(
    request: Request, viewer: Viewer = Depends(user("write:notifications"))
) -> dict[str, Any]:
    actor = viewer.require_account()
    async with app_state(request).db.write() as session:
        await service.clear(session, actor.id)
    return {}


@router.post("/api/v1/notifications/dismiss")
async def dismiss_by_parameter(
    request: Request, viewer: Viewer = Depends(user("write:notifications"))
) -> dict[str, Any]:
    """The older form of dismissing, with the id as a parameter."""
    actor = viewer.require_account()
    notification_id = as_id((await read_params(request)).get("id"))
    async with app_state(request).db.write() as session:
        await service.dismiss(session, actor.id, notification_id)
    return {}


@router.get("/api/v1/notifications/{notification_id}")
async def show_notification(
    notification_id: str, request: Request, viewer: Viewer = Depends(user("read:notifications"))
) -> dict[str, Any]:
    actor = viewer.require_account()
    state = app_state(request)
    async with state.db.read() as session:
        notification = await service.get_notification(session, actor.id, as_id(notification_id))
        rendered = await render_notifications(session, state, actor.id, [notification])
    if not rendered:
        raise not_found("Notification")
    return rendered[0]


@router.post("/api/v1/notifications/{notification_id}/dismiss")
async def dismiss(
    notification_id: str, request: Request, viewer: Viewer = Depends(user("write:notifications"))
) -> dict[str, Any]:
    actor = viewer.require_account()
    async with app_state(request).db.write() as session:
        await service.dismiss(session, actor.id, as_id(notification_id))
    return {}
