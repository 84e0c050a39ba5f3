"""A person's own pages: notifications, direct messages, bookmarks, and search."""

from __future__ import annotations

from fastapi import APIRouter, Request
from sqlalchemy import select
from starlette.responses import HTMLResponse, RedirectResponse, Response

from townsquare.accounts.service import find_by_username
from townsquare.api.errors import ApiError, not_found
from townsquare.api.pagination import Page
from townsquare.api.params import as_id
from townsquare.conversations.entities import render_conversations
from townsquare.conversations.service import (
    conversation_id_of,
    find_membership,
    list_conversations,
    mark_read,
)
from townsquare.notifications.entities import render_notifications, silenced_sender_ids
from townsquare.notifications.service import NotificationFilter, list_notifications
from townsquare.privacy import can_view_status
from townsquare.search.routes import SearchQuery, _results
from townsquare.state import app_state
from townsquare.statuses.create import create_status
from townsquare.statuses.entities import render_statuses
from townsquare.statuses.models import Bookmark, Status
from townsquare.statuses.queries import marked_statuses
from townsquare.statuses.schemas import StatusDraft
from townsquare.timelines.markers import save_markers
from townsquare.web.forms import read_form, text
from townsquare.web.pages import WebRoute, fragment, render, require_login
from townsquare.web.sessions import session_viewer
from townsquare.web.timeline_routes import PAGE_SIZE, feed, page_of

router = APIRouter(route_class=WebRoute)

MAX_MESSAGES = 200


@router.get("/notifications")
async def notifications(request: Request) -> Response:
    viewer = await require_login(request)
    state = app_state(request)
    me = viewer.require_account()
    async with state.db.read() as session:
        silenced = await silenced_sender_ids(session, me.id)
        found = await list_notifications(
            session, me.id, NotificationFilter(), page_of(request), silenced_senders=silenced
        )
        rendered = await render_notifications(session, state, me.id, found)
    if found and not request.query_params.get("max_id"):
        async with state.db.write() as session:
            await save_markers(session, me.id, {"notifications": found[0].id})
    next_max = str(found[-1].id) if len(found) >= PAGE_SIZE else None
    if request.query_params.get("fragment"):
        html = fragment(
            request, "_notifications.html", notifications=rendered, next_max=next_max, me=me
        )
        return HTMLResponse(html, headers={"Cache-Control": "no-store"})
    response = await render(
        request,
        "notifications.html",
        title="Notifications",
        notifications=rendered,
        next_max=next_max,
    )
    return response


@router.get("/bookmarks")
async def bookmarks(request: Request) -> Response:
    viewer = await require_login(request)
    me = viewer.require_account()
    async with app_state(request).db.read() as session:
        rows = await marked_statuses(session, me.id, Bookmark, page_of(request))
    return await feed(
        request,
        "bookmarks.html",
        [status for _, status in rows],
        me.id,
        title="Bookmarks",
        cursor=str(rows[-1][0]) if len(rows) >= PAGE_SIZE else None,
    )


@router.get("/search")
async def search(request: Request, q: str = "") -> Response:
    viewer = await session_viewer(request)
    q = q.strip()
    results = None
    if q:
        query = SearchQuery(q=q[:500], limit=10)
        results = await _results(app_state(request), viewer, query)
    if request.query_params.get("fragment"):
        html = fragment(request, "_search_results.html", results=results, q=q, me=viewer.account)
        return HTMLResponse(html, headers={"Cache-Control": "no-store"})
    return await render(request, "search.html", title="Search", results=results, q=q)


@router.get("/messages")
async def conversations(request: Request) -> Response:
    viewer = await require_login(request)
    state = app_state(request)
    me = viewer.require_account()
    async with state.db.read() as session:
        members = await list_conversations(session, me.id, Page(limit=40))
        rendered = await render_conversations(session, state, me.id, members)
    return await render(request, "messages.html", title="Messages", conversations=rendered)


@router.get("/messages/new")
async def new_message(request: Request, to: str = "") -> Response:
    await require_login(request)
    return await render(request, "message_new.html", title="New message", to=to.lstrip("@"))


@router.post("/messages")
async def send_message(request: Request) -> Response:
    viewer = await require_login(request)
    params = await read_form(request)
    state = app_state(request)
    me = viewer.require_account()
    to = text(params, "to").strip().lstrip("@")[:2000]
    body = text(params, "status").strip()
    reply_to = text(params, "in_reply_to_id")
    mentions = " ".join(f"@{name}" for name in to.split()) + " " if reply_to else ""
    if not reply_to:
        async with state.db.read() as session:
            recipient = await find_by_username(session, to) if to else None
        if recipient is None or recipient.suspended_at is not None:
            raise ApiError(422, "Choose someone on this server to write to")
        mentions = f"@{recipient.username} "
    if not body:
        raise ApiError(422, "Write a message first")
    draft = StatusDraft(
        status=mentions + body,
        visibility="direct",
        in_reply_to_id=as_id(reply_to) if reply_to else None,
    )
    async with state.db.write() as session:
        status = await create_status(session, state.settings, me, draft)
    return RedirectResponse(f"/messages/{conversation_id_of(status)}", status_code=303)


@router.get("/messages/{conversation_id}")
async def conversation(conversation_id: str, request: Request) -> Response:
    viewer = await require_login(request)
    state = app_state(request)
    me = viewer.require_account()
    cid = as_id(conversation_id)
    async with state.db.write() as session:
        # Someone else's conversation does not exist for this viewer.
        await find_membership(session, me.id, cid)
        await mark_read(session, me.id, cid)
    async with state.db.read() as session:
        candidates = await session.scalars(
            select(Status)
            .where(Status.thread_id == cid, Status.visibility == "direct")
            .order_by(Status.id)
            .limit(MAX_MESSAGES)
        )
        visible = [s for s in candidates if await can_view_status(session, me.id, s)]
        messages = await render_statuses(session, state, me.id, visible)
    if not messages:
        raise not_found("Conversation")
    last = messages[-1]
    others = {m["account"]["acct"] for m in messages if m["account"]["id"] != str(me.id)}
    others |= {
        mention["acct"]
        for m in messages
        for mention in m["mentions"]
        if mention["id"] != str(me.id)
    }
    if request.query_params.get("fragment"):
        html = fragment(request, "_messages.html", messages=messages, me=me)
        return HTMLResponse(html, headers={"Cache-Control": "no-store"})
    return await render(
        request,
        "conversation.html",
        title="Conversation with " + ", ".join(sorted(others) or ["yourself"]),
        messages=messages,
        last=last,
        others=sorted(others),
        conversation_id=str(cid),
    )
