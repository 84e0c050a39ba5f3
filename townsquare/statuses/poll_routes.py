"""Routes for polls: showing one and voting."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession

from townsquare.api.auth import Viewer, anyone, user
from townsquare.api.errors import ApiError
from townsquare.api.params import as_id, parse, read_params
from townsquare.state import app_state
from townsquare.statuses.entities import poll_entity
from townsquare.statuses.lookup import visible_status
from townsquare.statuses.models import Poll
from townsquare.statuses.polls import own_choices, vote
from townsquare.statuses.schemas import VoteDraft

router = APIRouter()


async def _visible_poll(
    session: AsyncSession, viewer_id: int | None, poll_id: str, *, for_update: bool = False
) -> Poll:
    poll = await session.get(Poll, as_id(poll_id), with_for_update=for_update)
    if poll is None:
        raise ApiError(404, "Record not found")
    await visible_status(session, viewer_id, poll.status_id)
    return poll


@router.get("/api/v1/polls/{poll_id}")
async def show_poll(
    poll_id: str, request: Request, viewer: Viewer = Depends(anyone)
) -> dict[str, Any]:
    state = app_state(request)
    async with state.db.read() as session:
        poll = await _visible_poll(session, viewer.account_id, poll_id)
        votes = None
        if viewer.account_id is not None:
            votes = (await own_choices(session, [poll.id], viewer.account_id)).get(poll.id)
    return poll_entity(poll, votes)


@router.post("/api/v1/polls/{poll_id}/votes")
async def vote_in_poll(
    poll_id: str, request: Request, viewer: Viewer = Depends(user("write:statuses"))
) -> dict[str, Any]:
    state = app_state(request)
    voter = viewer.require_account()
    draft = parse(VoteDraft, await read_params(request))
    async with state.db.write() as session:
        # Locked on PostgreSQL so concurrent votes add up; SQLite writes one at a time anyway.
        poll = await _visible_poll(session, voter.id, poll_id, for_update=True)
        await vote(session, poll, voter.id, draft.choices)
        votes = (await own_choices(session, [poll.id], voter.id)).get(poll.id)
    return poll_entity(poll, votes)
