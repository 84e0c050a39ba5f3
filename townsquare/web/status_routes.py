"""Posting, and what a person does to a post: reply, repost, quote, like, bookmark, edit, delete.

Forms post here and are sent back where they came from; the page's script sends the same forms
with ``Accept: application/json`` and gets the post's new HTML to swap in place.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import APIRouter, Request
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.datastructures import UploadFile
from starlette.responses import JSONResponse, RedirectResponse, Response

from townsquare.accounts.models import Account
from townsquare.api.errors import ApiError, not_found
from townsquare.api.params import as_id, parse
from townsquare.db.base import utcnow
from townsquare.media.uploads import save_upload
from townsquare.state import app_state
from townsquare.statuses import interactions
from townsquare.statuses.create import create_status
from townsquare.statuses.edit import delete_status, edit_status
from townsquare.statuses.entities import render_status
from townsquare.statuses.lookup import visible_status
from townsquare.statuses.models import Poll, Status
from townsquare.statuses.poll_routes import _visible_poll
from townsquare.statuses.polls import vote
from townsquare.statuses.schemas import (
    POLL_MAX_SECONDS,
    POLL_MIN_SECONDS,
    PollDraft,
    StatusChanges,
    StatusDraft,
    VoteDraft,
)
from townsquare.web.forms import close_form, read_form, text
from townsquare.web.limits import spend
from townsquare.web.pages import WebRoute, back, fragment, render, require_login, wants_json

router = APIRouter(route_class=WebRoute)

Action = Callable[[AsyncSession, Account, int], Awaitable[Status]]
ACTIONS: dict[str, Action] = {
    "favourite": interactions.favourite,
    "unfavourite": interactions.unfavourite,
    "bookmark": interactions.bookmark,
    "unbookmark": interactions.unbookmark,
    "unreblog": interactions.unreblog,
}
MAX_FILES = 4


def _draft_params(params: dict[str, Any]) -> dict[str, Any]:
    """The form's fields under the API's names; an untouched poll is no poll."""
    draft: dict[str, Any] = {
        key: params[key]
        for key in ("status", "spoiler_text", "visibility", "in_reply_to_id", "quoted_status_id")
        if isinstance(params.get(key), str) and params[key] != ""
    }
    poll = params.get("poll")
    if isinstance(poll, dict):
        options = [o for o in poll.get("options", []) if isinstance(o, str) and o.strip()]
        if options:
            draft["poll"] = {**poll, "options": options}
    draft["sensitive"] = text(params, "sensitive") == "on" or None
    return draft


@router.post("/statuses")
async def post(request: Request) -> Response:
    viewer = await require_login(request)
    state = app_state(request)
    author = viewer.require_account()
    max_bytes = state.settings.max_image_bytes * MAX_FILES
    try:
        params = await read_form(request, max_bytes=max_bytes)
        draft = parse(StatusDraft, _draft_params(params))
        await spend(request, "posting")
        media_field = params.get("media", [])
        chosen = media_field if isinstance(media_field, list) else [media_field]
        files = [f for f in chosen if isinstance(f, UploadFile) and f.filename]
        if len(files) > state.settings.max_media_attachments:
            raise ApiError(
                422, f"At most {state.settings.max_media_attachments} images on one post"
            )
        if files:
            await spend(request, "media", times=len(files))
        descriptions = params.get("media_description", [])
        if not isinstance(descriptions, list):
            descriptions = [descriptions]
        media_ids = []
        for index, upload in enumerate(files):
            description = descriptions[index] if index < len(descriptions) else None
            media = await save_upload(
                state, author.id, upload, description=description or None, focus=None
            )
            media_ids.append(media.id)
        draft = draft.model_copy(update={"media_ids": media_ids})
    finally:
        await close_form(request)
    async with state.db.write() as session:
        status = await create_status(
            session,
            state.settings,
            author,
            draft,
            idempotency_key=text(params, "idempotency_key") or None,
        )
        entity = await render_status(session, state, author.id, status)
    if wants_json(request):
        html = fragment(request, "_status.html", status=entity, me=author)
        return JSONResponse(
            {"id": entity["id"], "html": html}, headers={"Cache-Control": "no-store"}
        )
    return back(request, text(params, "next"))


def unchanged_poll(poll: Poll) -> PollDraft:
    remaining = POLL_MAX_SECONDS
    if poll.expires_at is not None:
        remaining = int((poll.expires_at - utcnow()).total_seconds())
    return PollDraft(
        options=list(poll.options),
        multiple=poll.multiple,
        hide_totals=poll.hide_totals,
        expires_in=min(max(remaining, POLL_MIN_SECONDS), POLL_MAX_SECONDS),
    )


@router.get("/statuses/{status_id}/edit")
async def edit_page(status_id: str, request: Request) -> Response:
    viewer = await require_login(request)
    state = app_state(request)
    actor = viewer.require_account()
    async with state.db.read() as session:
        status = await visible_status(session, actor.id, as_id(status_id))
        if status.account_id != actor.id or status.reblog_of_id is not None:
            raise not_found()
        entity = await render_status(session, state, actor.id, status)
    return await render(
        request,
        "edit.html",
        title="Edit post",
        status=entity,
        source=status.text,
        spoiler=status.spoiler_text,
    )


@router.post("/statuses/{status_id}/edit")
async def save_edit(status_id: str, request: Request) -> Response:
    viewer = await require_login(request)
    params = await read_form(request)
    state = app_state(request)
    actor = viewer.require_account()
    changes = parse(
        StatusChanges,
        {"status": text(params, "status"), "spoiler_text": text(params, "spoiler_text")},
    )
    async with state.db.write() as session:
        poll = await session.scalar(select(Poll).where(Poll.status_id == as_id(status_id)))
        if poll is not None:
            # The page edits the text only; the poll stays as it is, votes and all.
            changes = changes.model_copy(update={"poll": unchanged_poll(poll)})
        status = await edit_status(session, state.settings, actor, as_id(status_id), changes)
    return RedirectResponse(f"/@{actor.username}/{status.id}", status_code=303)


@router.post("/polls/{poll_id}/vote")
async def vote_in_poll(poll_id: str, request: Request) -> Response:
    viewer = await require_login(request)
    params = await read_form(request)
    state = app_state(request)
    voter = viewer.require_account()
    draft = parse(VoteDraft, {"choices": params.get("choices", [])})
    async with state.db.write() as session:
        poll = await _visible_poll(session, voter.id, poll_id, for_update=True)
        await vote(session, poll, voter.id, draft.choices)
        status = await visible_status(session, voter.id, poll.status_id)
        entity = await render_status(session, state, voter.id, status)
    if wants_json(request):
        html = fragment(request, "_status.html", status=entity, me=voter)
        return JSONResponse({"html": html}, headers={"Cache-Control": "no-store"})
    return back(request, text(params, "next"))


# Last: the paths above (``/statuses/<id>/edit``) must match before this one.
@router.post("/statuses/{status_id}/{action}")
async def act(status_id: str, action: str, request: Request) -> Response:
    viewer = await require_login(request)
    params = await read_form(request)
    state = app_state(request)
    actor = viewer.require_account()
    target = as_id(status_id)
    async with state.db.write() as session:
        if action == "reblog":
            visibility = text(params, "visibility") or None
            status = await interactions.reblog(session, actor, target, visibility)
            if status.reblog_of_id is not None:
                status = await visible_status(session, actor.id, status.reblog_of_id)
        elif action == "delete":
            await delete_status(session, actor, target)
            status = None
        elif action in ACTIONS:
            status = await ACTIONS[action](session, actor, target)
        else:
            raise not_found("Action")
        entity = await render_status(session, state, actor.id, status) if status else None
    if wants_json(request):
        html = fragment(request, "_status.html", status=entity, me=actor) if entity else ""
        return JSONResponse({"html": html}, headers={"Cache-Control": "no-store"})
    if action == "delete":
        return RedirectResponse(f"/@{actor.username}", status_code=303)
    return back(request, text(params, "next"))
