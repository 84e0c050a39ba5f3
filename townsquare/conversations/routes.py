"""``/api/v1/conversations``: a participant's direct-message conversations."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request, Response

from townsquare.api.auth import Viewer, user
from townsquare.api.errors import not_found
from townsquare.api.pagination import link_header, page_params
from townsquare.api.params import as_id
from townsquare.conversations import service
from townsquare.conversations.entities import render_conversations
from townsquare.state import app_state

router = APIRouter()


@router.get("/api/v1/conversations")
async def list_conversations(
    request: Request, response: Response, viewer: Viewer = Depends(user("read:statuses"))
) -> list[dict[str, Any]]:
    actor = viewer.require_account()
    page = page_params(request, default=20, maximum=40)
    state = app_state(request)
    async with state.db.read() as session:
        members = await service.list_conversations(session, actor.id, page)
        rendered = await render_conversations(session, state, actor.id, members)
    link_header(request, response, [member.last_status_id for member in members])
    return rendered


@router.delete("/api/v1/conversations/{conversation_id}")
async def remove_conversation(
    conversation_id: str, request: Request, viewer: Viewer = Depends(user("write:conversations"))
) -> dict[str, Any]:
    actor = viewer.require_account()
    async with app_state(request).db.write() as session:
        await service.hide_conversation(session, actor.id, as_id(conversation_id))
    return {}


@router.post("/api/v1/conversations/{conversation_id}/read")
async def mark_read(
    conversation_id: str, request: Request, viewer: Viewer = Depends(user("write:conversations"))
) -> dict[str, Any]:
    actor = viewer.require_account()
    state = app_state(request)
    async with state.db.write() as session:
        member = await service.mark_read(session, actor.id, as_id(conversation_id))
    async with state.db.read() as session:
        rendered = await render_conversations(session, state, actor.id, [member])
    if not rendered:
        raise not_found("Conversation")
    return rendered[0]
