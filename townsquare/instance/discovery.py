"""Finding people and topics: trends, the profile directory and follow suggestions."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Depends, Request, Response
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from townsquare.accounts.entities import account_entity
from townsquare.accounts.models import Account
from townsquare.api.auth import Viewer, anyone, user
from townsquare.api.params import parse, read_params
from townsquare.graph.models import Follow
from townsquare.instance.trends import render_tags, trending_statuses, trending_tags
from townsquare.privacy import hidden_account_ids
from townsquare.state import app_state
from townsquare.statuses.entities import render_statuses

router = APIRouter()

MAX_OFFSET = 10_000


class OffsetPage(BaseModel):
    model_config = ConfigDict(extra="ignore")

    limit: int = Field(20, ge=1)
    offset: int = Field(0, ge=0, le=MAX_OFFSET)

    def bounded(self, maximum: int) -> int:
        return min(self.limit, maximum)


class DirectoryQuery(OffsetPage):
    limit: int = Field(40, ge=1)
    order: Literal["active", "new"] = "active"
    local: bool = False


async def _page(request: Request, model: type[OffsetPage] = OffsetPage) -> OffsetPage:
    return parse(model, await read_params(request))


@router.get("/api/v1/trends")
@router.get("/api/v1/trends/tags")
async def trends_tags(request: Request, viewer: Viewer = Depends(anyone)) -> list[dict[str, Any]]:
    state = app_state(request)
    page = await _page(request)
    async with state.db.read() as session:
        tags = await trending_tags(session, limit=page.bounded(20), offset=page.offset)
        return await render_tags(session, state.settings, viewer.account_id, tags)


@router.get("/api/v1/trends/statuses")
async def trends_statuses(
    request: Request, viewer: Viewer = Depends(anyone)
) -> list[dict[str, Any]]:
    state = app_state(request)
    page = await _page(request)
    async with state.db.read() as session:
        statuses = await trending_statuses(
            session, viewer.account_id, limit=page.bounded(40), offset=page.offset
        )
        return await render_statuses(session, state, viewer.account_id, statuses)


@router.get("/api/v1/trends/links")
async def trends_links() -> list[dict[str, Any]]:
    # Link previews are not fetched, so there are no links to rank.
    return []


@router.get("/api/v1/directory")
async def directory(request: Request, viewer: Viewer = Depends(anyone)) -> list[dict[str, Any]]:
    state = app_state(request)
    query = parse(DirectoryQuery, await read_params(request))
    async with state.db.read() as session:
        hidden = await hidden_account_ids(session, viewer.account_id)
        statement = select(Account).where(
            Account.discoverable.is_(True), Account.suspended_at.is_(None)
        )
        if hidden:
            statement = statement.where(Account.id.not_in(hidden))
        if query.order == "new":
            statement = statement.order_by(Account.created_at.desc(), Account.id.desc())
        else:
            statement = statement.order_by(
                Account.last_status_at.desc().nulls_last(), Account.id.desc()
            )
        accounts = await session.scalars(statement.limit(query.bounded(80)).offset(query.offset))
        return [account_entity(account, state.settings) for account in accounts]


async def _suggested_accounts(session: AsyncSession, viewer_id: int, limit: int) -> list[Account]:
    """Popular discoverable accounts the viewer does not follow, block, mute or hide from."""
    hidden = await hidden_account_ids(session, viewer_id)
    followed = select(Follow.target_account_id).where(Follow.account_id == viewer_id)
    statement = (
        select(Account)
        .where(
            Account.discoverable.is_(True),
            Account.suspended_at.is_(None),
            Account.id != viewer_id,
            Account.id.not_in(followed),
        )
        .order_by(Account.followers_count.desc(), Account.last_status_at.desc().nulls_last())
        .limit(limit)
    )
    if hidden:
        statement = statement.where(Account.id.not_in(hidden))
    return list(await session.scalars(statement))


@router.get("/api/v1/suggestions")
async def suggestions_v1(
    request: Request, viewer: Viewer = Depends(user("read"))
) -> list[dict[str, Any]]:
    state = app_state(request)
    account = viewer.require_account()
    page = await _page(request)
    async with state.db.read() as session:
        accounts = await _suggested_accounts(session, account.id, page.bounded(80))
    return [account_entity(suggested, state.settings) for suggested in accounts]


@router.get("/api/v2/suggestions")
async def suggestions_v2(
    request: Request, viewer: Viewer = Depends(user("read"))
) -> list[dict[str, Any]]:
    state = app_state(request)
    account = viewer.require_account()
    page = await _page(request)
    async with state.db.read() as session:
        accounts = await _suggested_accounts(session, account.id, page.bounded(80))
    return [
        {
            "source": "global",
            "sources": ["most_followed"],
            "account": account_entity(suggested, state.settings),
        }
        for suggested in accounts
    ]


@router.delete("/api/v1/suggestions/{account_id}")
async def dismiss_suggestion(account_id: str, viewer: Viewer = Depends(user("read"))) -> Response:
    # Suggestions are computed, not stored; there is nothing to remember per dismissal.
    return Response("{}", media_type="application/json")
