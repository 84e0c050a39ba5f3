"""Lists of accounts: followers, following, follow requests, blocks, mutes, familiar followers."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request, Response
from sqlalchemy import Select, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute, aliased

from townsquare.accounts.entities import account_entity, iso_time, load_accounts
from townsquare.accounts.models import Account
from townsquare.api.auth import Viewer, anyone, user
from townsquare.api.errors import ApiError
from townsquare.api.pagination import Page, link_header, page_params
from townsquare.api.params import as_id, as_list, read_params
from townsquare.graph import service
from townsquare.graph.entities import render_relationships
from townsquare.graph.models import Block, Follow, FollowRequest, Mute
from townsquare.privacy import hidden_account_ids
from townsquare.state import app_state

router = APIRouter()

FAMILIAR_FOLLOWERS_SHOWN = 40


async def _page_of_accounts(
    session: AsyncSession,
    query: Select[Any],
    key: InstrumentedAttribute[int],
    listed: InstrumentedAttribute[int],
    page: Page,
) -> tuple[list[int], list[Account]]:
    """Run ``query`` (over rows joined to the listed Account) for ``page``: the paging keys and
    the accounts, newest first. Suspended accounts never appear."""
    query = query.where(Account.suspended_at.is_(None))
    rows = page.finish((await session.scalars(page.apply(query, key))).all())
    keys = [getattr(row, key.key) for row in rows]
    found = await load_accounts(session, [getattr(row, listed.key) for row in rows])
    accounts = [found[getattr(row, listed.key)] for row in rows]
    return keys, accounts


def _accounts_response(
    request: Request, response: Response, keys: list[int], accounts: list[Account]
) -> list[dict[str, Any]]:
    link_header(request, response, keys)
    settings = app_state(request).settings
    return [account_entity(account, settings) for account in accounts]


async def _follow_list(
    request: Request, response: Response, viewer: Viewer, account_id: str, *, followers: bool
) -> list[dict[str, Any]]:
    owner_id = as_id(account_id)
    page = page_params(request, default=40, maximum=80)
    async with app_state(request).db.read() as session:
        await service.find_target(session, owner_id)
        if viewer.account_id is not None and await session.scalar(
            select(Block.id).where(
                Block.account_id == owner_id, Block.target_account_id == viewer.account_id
            )
        ):
            return []
        listed, owner = (
            (Follow.account_id, Follow.target_account_id)
            if followers
            else (Follow.target_account_id, Follow.account_id)
        )
        query = select(Follow).join(Account, Account.id == listed).where(owner == owner_id)
        hidden = await hidden_account_ids(session, viewer.account_id)
        if hidden:
            query = query.where(Account.id.not_in(hidden))
        keys, accounts = await _page_of_accounts(session, query, Follow.id, listed, page)
    return _accounts_response(request, response, keys, accounts)


@router.get("/api/v1/accounts/{account_id}/followers")
async def followers(
    account_id: str, request: Request, response: Response, viewer: Viewer = Depends(anyone)
) -> list[dict[str, Any]]:
    return await _follow_list(request, response, viewer, account_id, followers=True)


@router.get("/api/v1/accounts/{account_id}/following")
async def following(
    account_id: str, request: Request, response: Response, viewer: Viewer = Depends(anyone)
) -> list[dict[str, Any]]:
    return await _follow_list(request, response, viewer, account_id, followers=False)


@router.get("/api/v1/follow_requests")
async def follow_requests(
    request: Request, response: Response, viewer: Viewer = Depends(user("read:follows"))
) -> list[dict[str, Any]]:
    actor = viewer.require_account()
    page = page_params(request, default=40, maximum=80)
    query = (
        select(FollowRequest)
        .join(Account, Account.id == FollowRequest.account_id)
        .where(FollowRequest.target_account_id == actor.id)
    )
    async with app_state(request).db.read() as session:
        keys, accounts = await _page_of_accounts(
            session, query, FollowRequest.id, FollowRequest.account_id, page
        )
    return _accounts_response(request, response, keys, accounts)


@router.post("/api/v1/follow_requests/{account_id}/authorize")
async def authorize(
    account_id: str, request: Request, viewer: Viewer = Depends(user("write:follows"))
) -> dict[str, Any]:
    requester_id = as_id(account_id)
    actor = viewer.require_account()
    async with app_state(request).db.write() as session:
        await service.authorize_follow_request(session, actor.id, requester_id)
    async with app_state(request).db.read() as session:
        return (await render_relationships(session, actor.id, [requester_id]))[0]


@router.post("/api/v1/follow_requests/{account_id}/reject")
async def reject(
    account_id: str, request: Request, viewer: Viewer = Depends(user("write:follows"))
) -> dict[str, Any]:
    requester_id = as_id(account_id)
    actor = viewer.require_account()
    async with app_state(request).db.write() as session:
        await service.reject_follow_request(session, actor.id, requester_id)
    async with app_state(request).db.read() as session:
        return (await render_relationships(session, actor.id, [requester_id]))[0]


@router.get("/api/v1/blocks")
async def blocks(
    request: Request, response: Response, viewer: Viewer = Depends(user("read:blocks"))
) -> list[dict[str, Any]]:
    actor = viewer.require_account()
    page = page_params(request, default=40, maximum=80)
    query = (
        select(Block)
        .join(Account, Account.id == Block.target_account_id)
        .where(Block.account_id == actor.id)
    )
    async with app_state(request).db.read() as session:
        keys, accounts = await _page_of_accounts(
            session, query, Block.id, Block.target_account_id, page
        )
    return _accounts_response(request, response, keys, accounts)


@router.get("/api/v1/mutes")
async def mutes(
    request: Request, response: Response, viewer: Viewer = Depends(user("read:mutes"))
) -> list[dict[str, Any]]:
    actor = viewer.require_account()
    page = page_params(request, default=40, maximum=80)
    query = (
        select(Mute)
        .join(Account, Account.id == Mute.target_account_id)
        .where(Mute.account_id == actor.id, service.mute_in_force())
    )
    async with app_state(request).db.read() as session:
        keys, accounts = await _page_of_accounts(
            session, query, Mute.id, Mute.target_account_id, page
        )
        expiry = {
            mute.target_account_id: mute.expires_at
            for mute in await session.scalars(select(Mute).where(Mute.id.in_(keys)))
        }
    result = _accounts_response(request, response, keys, accounts)
    for entity, account in zip(result, accounts, strict=True):
        expires_at = expiry.get(account.id)
        entity["mute_expires_at"] = iso_time(expires_at) if expires_at else None
    return result


@router.get("/api/v1/endorsements")
async def endorsements(
    viewer: Viewer = Depends(user("read:accounts")),
) -> list[dict[str, Any]]:
    # Featuring accounts on one's profile is not offered; clients get the empty list they expect.
    return []


@router.get("/api/v1/accounts/familiar_followers")
async def familiar_followers(
    request: Request, viewer: Viewer = Depends(user("read:follows"))
) -> list[dict[str, Any]]:
    """For each id: the accounts the viewer follows that also follow that account."""
    actor = viewer.require_account()
    ids: list[int] = []
    for raw in as_list((await read_params(request)).get("id"))[:40]:
        try:
            ids.append(as_id(raw))
        except ApiError:
            continue
    settings = app_state(request).settings
    result = []
    followed = aliased(Follow)
    viewer_follows = select(followed.target_account_id).where(followed.account_id == actor.id)
    async with app_state(request).db.read() as session:
        hidden = await hidden_account_ids(session, actor.id)
        for target_id in dict.fromkeys(ids):
            query = (
                select(Account)
                .join(Follow, Follow.account_id == Account.id)
                .where(
                    Follow.target_account_id == target_id,
                    Follow.account_id.in_(viewer_follows),
                    Account.suspended_at.is_(None),
                )
                .order_by(Follow.id.desc())
                .limit(FAMILIAR_FOLLOWERS_SHOWN)
            )
            if hidden:
                query = query.where(Account.id.not_in(hidden))
            accounts = (await session.scalars(query)).all()
            result.append(
                {
                    "id": str(target_id),
                    "accounts": [account_entity(account, settings) for account in accounts],
                }
            )
    return result
