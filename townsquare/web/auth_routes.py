"""Signing up, logging in and out, and the account's own settings (profile, password)."""

from __future__ import annotations

from dataclasses import replace

from fastapi import APIRouter, Request
from starlette.responses import RedirectResponse, Response

from townsquare.accounts.models import Account
from townsquare.accounts.passwords import hash_password_off_loop
from townsquare.accounts.profile import update_profile
from townsquare.accounts.schemas import CredentialsForm
from townsquare.accounts.service import (
    MAX_PASSWORD,
    MIN_PASSWORD,
    NewAccount,
    account_problems,
    can_log_in,
    create_account,
    find_login,
    password_matches,
)
from townsquare.api.errors import ApiError, forbidden
from townsquare.api.params import parse, upload
from townsquare.media.uploads import store_profile_image
from townsquare.state import app_state
from townsquare.web.forms import close_form, read_form, text
from townsquare.web.pages import WebRoute, render, require_login, safe_next
from townsquare.web.sessions import end_other_sessions, end_session, session_viewer, start_session

router = APIRouter(route_class=WebRoute)

PROFILE_FORM_BYTES = 16 * 1024 * 1024


@router.get("/auth/sign_in")
async def sign_in_page(request: Request, next: str = "/") -> Response:
    if (await session_viewer(request)).account is not None:
        return RedirectResponse(safe_next(next), status_code=303)
    return await render(request, "sign_in.html", title="Log in", next=safe_next(next), login="")


@router.post("/auth/sign_in")
async def sign_in(request: Request) -> Response:
    params = await read_form(request)
    login, password = text(params, "login"), text(params, "password")
    next_path = safe_next(text(params, "next"))
    async with app_state(request).db.read() as session:
        account = await find_login(session, login)
    if not await can_log_in(account, password):
        return await render(
            request,
            "sign_in.html",
            status_code=401,
            title="Log in",
            next=next_path,
            login=login,
            error="Wrong username, email or password, or the account is suspended.",
        )
    assert account is not None
    response = RedirectResponse(next_path, status_code=303)
    await start_session(request, response, account)
    return response


@router.get("/auth/sign_up")
async def sign_up_page(request: Request) -> Response:
    return await render(request, "sign_up.html", title="Sign up", form={}, problems={})


@router.post("/auth/sign_up")
async def sign_up(request: Request) -> Response:
    params = await read_form(request)
    state = app_state(request)
    if not state.settings.registrations_open:
        raise forbidden("Registrations are closed on this server")
    form = {key: text(params, key) for key in ("username", "email", "display_name")}
    new = NewAccount(
        username=form["username"].strip(),
        email=form["email"].strip(),
        password=text(params, "password"),
        display_name=form["display_name"].strip(),
    )
    problems = {p.field: p.description for p in account_problems(new)}
    if text(params, "agreement") != "on":
        problems["agreement"] = "must be accepted"
    account: Account | None = None
    if not problems:
        password_hash = await hash_password_off_loop(new.password)
        try:
            async with state.db.write() as session:
                account = await create_account(session, new, password_hash=password_hash)
        except ApiError as error:
            details = error.extra.get("details", {})
            problems = {name: found[0]["description"] for name, found in details.items()}
            problems = problems or {"username": error.message}
    if account is None:
        return await render(
            request, "sign_up.html", status_code=422, title="Sign up", form=form, problems=problems
        )
    response = RedirectResponse("/", status_code=303)
    await start_session(request, response, account)
    return response


@router.post("/auth/sign_out")
async def sign_out(request: Request) -> Response:
    await read_form(request)
    response = RedirectResponse("/", status_code=303)
    await end_session(request, response)
    return response


@router.get("/settings/profile")
async def profile_settings(request: Request) -> Response:
    await require_login(request)
    return await render(request, "settings_profile.html", title="Edit profile")


@router.post("/settings/profile")
async def save_profile(request: Request) -> Response:
    viewer = await require_login(request)
    state = app_state(request)
    account_id = viewer.require_account().id
    try:
        params = await read_form(request, max_bytes=PROFILE_FORM_BYTES)
        changes = parse(
            CredentialsForm,
            {
                "display_name": text(params, "display_name"),
                "note": text(params, "note"),
                "locked": text(params, "locked") == "on",
            },
        ).changes()
        avatar, header = upload(params, "avatar"), upload(params, "header")
        if avatar is not None and avatar.filename:
            stored = await store_profile_image(state, account_id, avatar, "avatar")
            changes = replace(changes, avatar_media_id=stored.id, avatar_file=stored.file_name)
        if header is not None and header.filename:
            stored = await store_profile_image(state, account_id, header, "header")
            changes = replace(changes, header_media_id=stored.id, header_file=stored.file_name)
    finally:
        await close_form(request)
    async with state.db.write() as session:
        account = await session.get(Account, account_id)
        if account is None:
            raise ApiError(401, "Log in again")
        await update_profile(session, state.settings, account, changes)
    request.state.web_viewer = None
    return await render(request, "settings_profile.html", title="Edit profile", saved=True)


@router.get("/settings/password")
async def password_settings(request: Request) -> Response:
    await require_login(request)
    return await render(request, "settings_password.html", title="Change password")


@router.post("/settings/password")
async def change_password(request: Request) -> Response:
    viewer = await require_login(request)
    params = await read_form(request)
    account = viewer.require_account()
    current, new = text(params, "current_password"), text(params, "new_password")
    error = None
    if not await password_matches(account, current):
        error = "The current password is wrong."
    elif not MIN_PASSWORD <= len(new) <= MAX_PASSWORD:
        error = f"The new password must be {MIN_PASSWORD} to {MAX_PASSWORD} characters long."
    elif new != text(params, "confirm_password"):
        error = "The two new passwords differ."
    if error is not None:
        return await render(
            request, "settings_password.html", status_code=422, title="Change password", error=error
        )
    password_hash = await hash_password_off_loop(new)
    async with app_state(request).db.write() as session:
        stored = await session.get(Account, account.id)
        assert stored is not None
        stored.password_hash = password_hash
    await end_other_sessions(request, account.id)
    return await render(request, "settings_password.html", title="Change password", saved=True)
