"""Routes that list statuses or accounts around statuses, paginated with Link headers."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request, Response

from townsquare.accounts.entities import account_entity, load_accounts
from townsquare.accounts.models import Account
from townsquare.api.auth import Viewer, anyone, user
from townsquare.api.errors import ApiError
from townsquare.api.pagination import link_header, page_params
from townsquare.api.params import as_id, parse, read_params
from townsquare.state import app_state
from townsquare.statuses.entities import render_statuses
from townsquare.statuses.lookup import original_of, visible_status
from townsquare.statuses.models import Bookmark, Favourite
from townsquare.statuses.queries import (
    AccountStatusFilter,
    account_statuses,
    favouriters,
    marked_statuses,
    rebloggers,
)
from townsquare.statuses.schemas import AccountStatusesQuery

router = APIRouter()


@router.get("/api/v1/favourites")
async def list_favourites(
    request: Request, response: Response, viewer: Viewer = Depends(user("read:favourites"))
) -> list[dict[str, Any]]:
    return await _marked(request, response, viewer, Favourite)


@router.get("/api/v1/bookmarks")
async def list_bookmarks(
    request: Request, response: Response, viewer: Viewer = Depends(user("read:bookmarks"))
) -> list[dict[str, Any]]:
    return await _marked(request, response, viewer, Bookmark)


async def _marked(
    request: Request,
    response: Response,
    viewer: Viewer,
    mark: type[Favourite] | type[Bookmark],
) -> list[dict[str, Any]]:
    state = app_state(request)
    account = viewer.require_account()
    page = page_params(request)
    async with state.db.read() as session:
        rows = await marked_statuses(session, account.id, mark, page)
        rendered = await render_statuses(session, state, account.id, [s for _, s in rows])
    link_header(request, response, [mark_id for mark_id, _ in rows])
    return rendered


async def _accounts_around(
    request: Request, response: Response, viewer: Viewer, status_id: str, *, reblogs: bool
) -> list[dict[str, Any]]:
    state = app_state(request)
    page = page_params(request)
    async with state.db.read() as session:
        status = await visible_status(session, viewer.account_id, as_id(status_id))
        status = await original_of(session, status)
        lister = rebloggers if reblogs else favouriters
        rows = await lister(session, viewer.account_id, status, page)
        accounts = await load_accounts(session, [account_id for _, account_id in rows])
    link_header(request, response, [row_id for row_id, _ in rows])
    return [
        account_entity(accounts[account_id], state.settings)
        for _, account_id in rows
        if account_id in accounts and accounts[account_id].suspended_at is None
    ]


@router.get("/api/v1/statuses/{status_id}/reblogged_by")
async def reblogged_by(
    status_id: str, request: Request, response: Response, viewer: Viewer = Depends(anyone)
) -> list[dict[str, Any]]:
    return await _accounts_around(request, response, viewer, status_id, reblogs=True)


@router.get("/api/v1/statuses/{status_id}/favourited_by")
async def favourited_by(
    status_id: str, request: Request, response: Response, viewer: Viewer = Depends(anyone)
) -> list[dict[str, Any]]:
    return await _accounts_around(request, response, viewer, status_id, reblogs=False)


@router.get("/api/v1/accounts/{account_id}/statuses")
async def statuses_of_account(
    account_id: str, request: Request, response: Response, viewer: Viewer = Depends(anyone)
) -> list[dict[str, Any]]:
    state = app_state(request)
    query = parse(AccountStatusesQuery, await read_params(request))
    page = page_params(request)
    async with state.db.read() as session:
        account = await session.get(Account, as_id(account_id))
        if account is None:
            raise ApiError(404, "Record not found")
        wanted = AccountStatusFilter(
            only_media=query.only_media,
            exclude_replies=query.exclude_replies,
            exclude_reblogs=query.exclude_reblogs,
            pinned=query.pinned,
            tagged=query.tagged or None,
        )
        statuses = await account_statuses(session, viewer.account_id, account, wanted, page)
        rendered = await render_statuses(session, state, viewer.account_id, statuses)
    link_header(request, response, [status.id for status in statuses])
    return rendered
