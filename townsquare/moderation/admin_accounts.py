"""The admin API's accounts: looking them up, acting on them and lifting actions."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request, Response
from pydantic import BaseModel, Field

from townsquare.accounts.models import Account
from townsquare.api.auth import Viewer, moderator
from townsquare.api.errors import not_found
from townsquare.api.pagination import link_header, page_params
from townsquare.api.params import as_id, parse, read_params
from townsquare.moderation import service
from townsquare.moderation.entities import admin_account_entity
from townsquare.state import app_state

router = APIRouter()


class AccountListQuery(BaseModel):
    status: str | None = Field(None, pattern="^(active|suspended|silenced|disabled|sensitized)$")
    username: str | None = Field(None, max_length=30)
    email: str | None = Field(None, max_length=320)
    role: str | None = None


@router.get("/api/v1/admin/accounts")
async def admin_accounts(
    request: Request,
    response: Response,
    _viewer: Viewer = Depends(moderator("admin:read:accounts")),
) -> list[dict[str, Any]]:
    query = parse(AccountListQuery, await read_params(request))
    which = service.AccountFilter(
        status=query.status, username=query.username, email=query.email, role=query.role
    )
    page = page_params(request, default=100, maximum=200)
    state = app_state(request)
    async with state.db.read() as session:
        accounts = await service.list_accounts(session, which, page)
    link_header(request, response, [account.id for account in accounts])
    return [admin_account_entity(account, state) for account in accounts]


class ActionForm(BaseModel):
    type: str = "none"
    report_id: str | None = None
    text: str | None = Field(None, max_length=5000)
    send_email_notification: bool = False


@router.get("/api/v1/admin/accounts/{account_id}")
async def admin_account(
    request: Request, account_id: str, _viewer: Viewer = Depends(moderator("admin:read:accounts"))
) -> dict[str, Any]:
    state = app_state(request)
    async with state.db.read() as session:
        account = await session.get(Account, as_id(account_id))
    if account is None:
        raise not_found()
    return admin_account_entity(account, state)


@router.post("/api/v1/admin/accounts/{account_id}/action")
async def account_action(
    request: Request,
    account_id: str,
    viewer: Viewer = Depends(moderator("admin:write:accounts")),
) -> dict[str, Any]:
    form = parse(ActionForm, await read_params(request))
    target_id = as_id(account_id)
    report_id = as_id(form.report_id) if form.report_id else None
    async with app_state(request).db.write() as session:
        target = await session.get(Account, target_id)
        if target is None:
            raise not_found()
        acting = await session.get(Account, viewer.require_account().id)
        assert acting is not None
        report = await service.get_report(session, report_id) if report_id else None
        await service.take_action(session, acting, target, form.type, report)
    return {}


async def _lift(request: Request, account_id: str, what: str) -> dict[str, Any]:
    state = app_state(request)
    async with state.db.write() as session:
        target = await session.get(Account, as_id(account_id))
        if target is None:
            raise not_found()
        service.lift(target, what)
        return admin_account_entity(target, state)


@router.post("/api/v1/admin/accounts/{account_id}/unsuspend")
async def unsuspend_account(
    request: Request, account_id: str, _viewer: Viewer = Depends(moderator("admin:write:accounts"))
) -> dict[str, Any]:
    return await _lift(request, account_id, "unsuspend")


@router.post("/api/v1/admin/accounts/{account_id}/unsilence")
async def unsilence_account(
    request: Request, account_id: str, _viewer: Viewer = Depends(moderator("admin:write:accounts"))
) -> dict[str, Any]:
    return await _lift(request, account_id, "unsilence")


@router.post("/api/v1/admin/accounts/{account_id}/unsensitive")
async def unsensitive_account(
    request: Request, account_id: str, _viewer: Viewer = Depends(moderator("admin:write:accounts"))
) -> dict[str, Any]:
    return await _lift(request, account_id, "unsensitive")


@router.post("/api/v1/admin/accounts/{account_id}/enable")
async def enable_account(
    request: Request, account_id: str, _viewer: Viewer = Depends(moderator("admin:write:accounts"))
) -> dict[str, Any]:
    return await _lift(request, account_id, "enable")
