"""Follow, block, mute and friends: ``/api/v1/accounts/:id/<action>`` and relationships."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, Field, field_validator

from townsquare.api.auth import Viewer, user
from townsquare.api.errors import ApiError
from townsquare.api.params import as_id, as_list, parse, read_params
from townsquare.graph import service
from townsquare.graph.entities import render_relationships
from townsquare.graph.lists import router as lists_router
from townsquare.graph.tags import router as tags_router
from townsquare.state import app_state

router = APIRouter()
router.include_router(lists_router)
router.include_router(tags_router)

MAX_RELATIONSHIP_IDS = 100


class FollowForm(BaseModel):
    reblogs: bool | None = None
    notify: bool | None = None
    languages: list[str] | None = Field(default=None, max_length=50)

    @field_validator("languages", mode="before")
    @classmethod
    def _listify(cls, value: Any) -> Any:
        return None if value is None else as_list(value)


class MuteForm(BaseModel):
    notifications: bool = True
    duration: int = Field(default=0, ge=0, le=10 * 365 * 24 * 3600)


class NoteForm(BaseModel):
    comment: str = Field(default="", max_length=service.MAX_NOTE)


async def _relationship(request: Request, viewer_id: int, target_id: int) -> dict[str, Any]:
    async with app_state(request).db.read() as session:
        return (await render_relationships(session, viewer_id, [target_id]))[0]


@router.post("/api/v1/accounts/{account_id}/follow")
async def follow(
    account_id: str, request: Request, viewer: Viewer = Depends(user("write:follows"))
) -> dict[str, Any]:
    target_id = as_id(account_id)
    form = parse(FollowForm, await read_params(request))
    actor = viewer.require_account()
    options = service.FollowOptions(
        reblogs=form.reblogs, notify=form.notify, languages=form.languages
    )
    async with app_state(request).db.write() as session:
        await service.follow(session, actor.id, target_id, options)
    return await _relationship(request, actor.id, target_id)


@router.post("/api/v1/accounts/{account_id}/unfollow")
async def unfollow(
    account_id: str, request: Request, viewer: Viewer = Depends(user("write:follows"))
) -> dict[str, Any]:
    target_id = as_id(account_id)
    actor = viewer.require_account()
    async with app_state(request).db.write() as session:
        await service.unfollow(session, actor.id, target_id)
    return await _relationship(request, actor.id, target_id)


@router.post("/api/v1/accounts/{account_id}/remove_from_followers")
async def remove_from_followers(
    account_id: str, request: Request, viewer: Viewer = Depends(user("write:follows"))
) -> dict[str, Any]:
    target_id = as_id(account_id)
    actor = viewer.require_account()
    async with app_state(request).db.write() as session:
        await service.remove_follower(session, actor.id, target_id)
    return await _relationship(request, actor.id, target_id)


@router.post("/api/v1/accounts/{account_id}/block")
async def block(
    account_id: str, request: Request, viewer: Viewer = Depends(user("write:blocks"))
) -> dict[str, Any]:
    target_id = as_id(account_id)
    actor = viewer.require_account()
    async with app_state(request).db.write() as session:
        await service.block(session, actor.id, target_id)
    return await _relationship(request, actor.id, target_id)


@router.post("/api/v1/accounts/{account_id}/unblock")
async def unblock(
    account_id: str, request: Request, viewer: Viewer = Depends(user("write:blocks"))
) -> dict[str, Any]:
    target_id = as_id(account_id)
    actor = viewer.require_account()
    async with app_state(request).db.write() as session:
        await service.unblock(session, actor.id, target_id)
    return await _relationship(request, actor.id, target_id)


@router.post("/api/v1/accounts/{account_id}/mute")
async def mute(
    account_id: str, request: Request, viewer: Viewer = Depends(user("write:mutes"))
) -> dict[str, Any]:
    target_id = as_id(account_id)
    form = parse(MuteForm, await read_params(request))
    actor = viewer.require_account()
    async with app_state(request).db.write() as session:
        await service.mute(
            session,
            actor.id,
            target_id,
            hide_notifications=form.notifications,
            duration=form.duration,
        )
    return await _relationship(request, actor.id, target_id)


@router.post("/api/v1/accounts/{account_id}/unmute")
async def unmute(
    account_id: str, request: Request, viewer: Viewer = Depends(user("write:mutes"))
) -> dict[str, Any]:
    target_id = as_id(account_id)
    actor = viewer.require_account()
    async with app_state(request).db.write() as session:
        await service.unmute(session, actor.id, target_id)
    return await _relationship(request, actor.id, target_id)


@router.post("/api/v1/accounts/{account_id}/note")
async def note(
    account_id: str, request: Request, viewer: Viewer = Depends(user("write:accounts"))
) -> dict[str, Any]:
    target_id = as_id(account_id)
    form = parse(NoteForm, await read_params(request))
    actor = viewer.require_account()
    async with app_state(request).db.write() as session:
        await service.set_note(session, actor.id, target_id, form.comment)
    return await _relationship(request, actor.id, target_id)


@router.get("/api/v1/accounts/relationships")
async def relationships(
    request: Request, viewer: Viewer = Depends(user("read:follows"))
) -> list[dict[str, Any]]:
    params = await read_params(request)
    raw_ids = as_list(params.get("id"))[:MAX_RELATIONSHIP_IDS]
    ids = []
    for raw in raw_ids:
        try:
            ids.append(as_id(raw))
        except ApiError:
            continue  # Mastodon leaves unknown ids out rather than failing the whole list.
    actor = viewer.require_account()
    async with app_state(request).db.read() as session:
        existing = await service.existing_account_ids(session, ids)
        return await render_relationships(session, actor.id, [i for i in ids if i in existing])
