"""The signed-in account's own profile: reading and changing it, and its preferences."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from fastapi import APIRouter, Depends, Request
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from townsquare.accounts.entities import account_entity
from townsquare.accounts.models import Account
from townsquare.accounts.profile import update_profile
from townsquare.accounts.schemas import CredentialsForm
from townsquare.api.auth import Viewer, user
from townsquare.api.errors import ApiError
from townsquare.api.params import parse, read_params, upload
from townsquare.config import Settings
from townsquare.graph.models import FollowRequest
from townsquare.media.service import store_profile_image
from townsquare.oauth.scopes import covers
from townsquare.state import app_state

router = APIRouter()


async def credential_account(
    session: AsyncSession, settings: Settings, account: Account
) -> dict[str, Any]:
    entity = account_entity(account, settings, source=True)
    pending = await session.scalar(
        select(func.count())
        .select_from(FollowRequest)
        .where(FollowRequest.target_account_id == account.id)
    )
    entity["source"]["follow_requests_count"] = int(pending or 0)
    return entity


@router.get("/api/v1/accounts/verify_credentials")
async def verify_credentials(request: Request, viewer: Viewer = Depends(user())) -> dict[str, Any]:
    # Mastodon accepts the narrow "profile" scope here as well as read:accounts.
    if not covers(viewer.scopes, "profile"):
        raise ApiError(403, "This action is outside the authorized scopes")
    state = app_state(request)
    async with state.db.read() as session:
        account = await session.get(Account, viewer.require_account().id)
        if account is None:
            raise ApiError(401, "The access token is invalid")
        return await credential_account(session, state.settings, account)


@router.patch("/api/v1/accounts/update_credentials")
async def update_credentials(
    request: Request, viewer: Viewer = Depends(user("write:accounts"))
) -> dict[str, Any]:
    state = app_state(request)
    params = await read_params(request)
    changes = parse(CredentialsForm, params).changes()
    account_id = viewer.require_account().id
    # Images are stored (each in its own short transaction) only once the form is known good.
    avatar_upload, header_upload = upload(params, "avatar"), upload(params, "header")
    if avatar_upload is not None:
        avatar = await store_profile_image(state, account_id, avatar_upload, "avatar")
        changes = replace(changes, avatar_media_id=avatar.id, avatar_file=avatar.file_name)
    if header_upload is not None:
        header = await store_profile_image(state, account_id, header_upload, "header")
        changes = replace(changes, header_media_id=header.id, header_file=header.file_name)
    async with state.db.write() as session:
        account = await session.get(Account, account_id)
        if account is None:
            raise ApiError(401, "The access token is invalid")
        await update_profile(session, state.settings, account, changes)
        return await credential_account(session, state.settings, account)


@router.get("/api/v1/preferences")
async def preferences(
    request: Request, viewer: Viewer = Depends(user("read:accounts"))
) -> dict[str, Any]:
    async with app_state(request).db.read() as session:
        account = await session.get(Account, viewer.require_account().id)
    if account is None:
        raise ApiError(401, "The access token is invalid")
    return {
        "posting:default:visibility": account.default_visibility,
        "posting:default:sensitive": account.default_sensitive,
        "posting:default:language": account.default_language,
        "reading:expand:media": "default",
        "reading:expand:spoilers": False,
    }
