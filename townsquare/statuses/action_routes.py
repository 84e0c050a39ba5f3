"""Routes for what a person does to a status: reblog, favourite, bookmark, pin, mute."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import APIRouter, Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession

from townsquare.accounts.models import Account
from townsquare.api.auth import Viewer, user
from townsquare.api.params import as_id, parse, read_params
from townsquare.state import app_state
from townsquare.statuses import interactions
from townsquare.statuses.entities import render_status
from townsquare.statuses.lookup import original_of, visible_status
from townsquare.statuses.models import Status
from townsquare.statuses.schemas import ReblogDraft

router = APIRouter()

Action = Callable[[AsyncSession, Account, int], Awaitable[Status]]


async def _act(request: Request, viewer: Viewer, status_id: str, action: Action) -> dict[str, Any]:
    state = app_state(request)
    actor = viewer.require_account()
    async with state.db.write() as session:
        status = await action(session, actor, as_id(status_id))
        return await render_status(session, state, actor.id, status)


@router.post("/api/v1/statuses/{status_id}/reblog")
async def reblog(
    status_id: str, request: Request, viewer: Viewer = Depends(user("write:statuses"))
) -> dict[str, Any]:
    draft = parse(ReblogDraft, await read_params(request))

    async def action(session: AsyncSession, actor: Account, target: int) -> Status:
        return await interactions.reblog(
            session, actor, target, draft.visibility, application_id=viewer.app_id
        )

    return await _act(request, viewer, status_id, action)


@router.post("/api/v1/statuses/{status_id}/unreblog")
async def unreblog(
    status_id: str, request: Request, viewer: Viewer = Depends(user("write:statuses"))
) -> dict[str, Any]:
    return await _act(request, viewer, status_id, interactions.unreblog)


@router.post("/api/v1/statuses/{status_id}/favourite")
async def favourite(
    status_id: str, request: Request, viewer: Viewer = Depends(user("write:favourites"))
) -> dict[str, Any]:
    return await _act(request, viewer, status_id, interactions.favourite)


@router.post("/api/v1/statuses/{status_id}/unfavourite")
async def unfavourite(
    status_id: str, request: Request, viewer: Viewer = Depends(user("write:favourites"))
) -> dict[str, Any]:
    return await _act(request, viewer, status_id, interactions.unfavourite)


@router.post("/api/v1/statuses/{status_id}/bookmark")
async def bookmark(
    status_id: str, request: Request, viewer: Viewer = Depends(user("write:bookmarks"))
) -> dict[str, Any]:
    return await _act(request, viewer, status_id, interactions.bookmark)


@router.post("/api/v1/statuses/{status_id}/unbookmark")
async def unbookmark(
    status_id: str, request: Request, viewer: Viewer = Depends(user("write:bookmarks"))
) -> dict[str, Any]:
    return await _act(request, viewer, status_id, interactions.unbookmark)


@router.post("/api/v1/statuses/{status_id}/pin")
async def pin(
    status_id: str, request: Request, viewer: Viewer = Depends(user("write:accounts"))
) -> dict[str, Any]:
    return await _act(request, viewer, status_id, interactions.pin)


@router.post("/api/v1/statuses/{status_id}/unpin")
async def unpin(
    status_id: str, request: Request, viewer: Viewer = Depends(user("write:accounts"))
) -> dict[str, Any]:
    return await _act(request, viewer, status_id, interactions.unpin)


async def _visible_original(session: AsyncSession, actor: Account, status_id: int) -> Status:
    return await original_of(session, await visible_status(session, actor.id, status_id))


# Muting a conversation only silences notifications, which are not muted per thread here yet:
# the status comes back unchanged so clients carry on.
@router.post("/api/v1/statuses/{status_id}/mute")
async def mute_conversation(
    status_id: str, request: Request, viewer: Viewer = Depends(user("write:mutes"))
) -> dict[str, Any]:
    return await _act(request, viewer, status_id, _visible_original)


@router.post("/api/v1/statuses/{status_id}/unmute")
async def unmute_conversation(
    status_id: str, request: Request, viewer: Viewer = Depends(user("write:mutes"))
) -> dict[str, Any]:
    return await _act(request, viewer, status_id, _visible_original)
