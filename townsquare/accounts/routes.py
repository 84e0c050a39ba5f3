"""Account endpoints: sign-up, profiles, lookup and search."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, Field

from townsquare.accounts import credentials_routes
from townsquare.accounts.directory import lookup, search_accounts
from townsquare.accounts.entities import account_entity, load_accounts
from townsquare.accounts.models import Account
from townsquare.accounts.passwords import hash_password_off_loop
from townsquare.accounts.schemas import RegistrationForm
from townsquare.accounts.service import (
    NewAccount,
    account_problems,
    create_account,
    validation_error,
)
from townsquare.api.auth import Viewer, anyone, app_or_user, user
from townsquare.api.errors import ApiError, forbidden, not_found, unprocessable
from townsquare.api.params import as_id, as_list, parse, read_params
from townsquare.oauth.routes import token_entity
from townsquare.oauth.service import issue_token
from townsquare.state import app_state

router = APIRouter()
router.include_router(credentials_routes.router)

MAX_MANY = 40


@router.post("/api/v1/accounts")
async def register(
    request: Request, viewer: Viewer = Depends(app_or_user("write:accounts"))
) -> dict[str, Any]:
    state = app_state(request)
    if not state.settings.registrations_open:
        raise forbidden("Registrations are closed on this server")
    if viewer.account is not None:
        raise forbidden("You are already signed in")
    form = parse(RegistrationForm, await read_params(request))
    new = NewAccount(
        username=form.username, email=form.email, password=form.password, locale=form.locale
    )
    problems = account_problems(new)
    if problems:
        raise validation_error(problems)
    password_hash = await hash_password_off_loop(form.password)
    async with state.db.write() as session:
        account = await create_account(session, new, password_hash=password_hash)
        issued = await issue_token(
            session, app_id=viewer.app_id, account_id=account.id, scopes=sorted(viewer.scopes)
        )
    return token_entity(
        issued.access_token,
        issued.token.scopes,
        int(issued.token.created_at.timestamp()),
        issued.refresh_token,
    )


class SearchQuery(BaseModel):
    q: str = Field(max_length=200)
    limit: int = Field(40, ge=1)
    offset: int = Field(0, ge=0, le=10_000)
    resolve: bool = False
    following: bool = False


@router.get("/api/v1/accounts/search")
async def search(
    request: Request, viewer: Viewer = Depends(user("read:accounts"))
) -> list[dict[str, Any]]:
    query = parse(SearchQuery, await read_params(request))
    state = app_state(request)
    async with state.db.read() as session:
        found = await search_accounts(
            session,
            state.settings,
            viewer.account_id,
            query.q,
            limit=min(query.limit, 80),
            offset=query.offset,
            following=query.following,
        )
    return [account_entity(account, state.settings) for account in found]


@router.get("/api/v1/accounts/lookup")
async def lookup_account(request: Request, _viewer: Viewer = Depends(anyone)) -> dict[str, Any]:
    acct = request.query_params.get("acct", "")
    if not acct:
        raise unprocessable("acct is required")
    state = app_state(request)
    async with state.db.read() as session:
        account = await lookup(session, state.settings, acct)
    if account is None:
        raise not_found()
    return account_entity(account, state.settings)


@router.get("/api/v1/accounts")
async def many_accounts(
    request: Request, _viewer: Viewer = Depends(anyone)
) -> list[dict[str, Any]]:
    raw = as_list((await read_params(request)).get("id"))
    if len(raw) > MAX_MANY:
        raise unprocessable(f"at most {MAX_MANY} ids")
    ids: list[int] = []
    for value in raw:
        try:
            ids.append(as_id(value))
        except ApiError:
            continue
    state = app_state(request)
    async with state.db.read() as session:
        found = await load_accounts(session, ids)
    return [account_entity(found[i], state.settings) for i in dict.fromkeys(ids) if i in found]


@router.get("/api/v1/accounts/{account_id:int}")
async def get_account(
    request: Request, account_id: int, _viewer: Viewer = Depends(anyone)
) -> dict[str, Any]:
    state = app_state(request)
    async with state.db.read() as session:
        account = await session.get(Account, as_id(account_id))
    if account is None:
        raise not_found()
    return account_entity(account, state.settings)
