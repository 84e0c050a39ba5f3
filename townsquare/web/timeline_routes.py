"""Pages that read: home, public and hashtag timelines, profiles and threads.

Each list page also answers ``?fragment=1`` with only its posts and the next page's link, which
the page's script appends for "load more" and infinite scroll.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import HTMLResponse, Response

from townsquare.accounts.entities import account_entity
from townsquare.accounts.models import Account
from townsquare.accounts.service import find_by_username
from townsquare.api.errors import ApiError, not_found
from townsquare.api.pagination import Page
from townsquare.api.params import as_id
from townsquare.graph.entities import render_relationships
from townsquare.state import app_state
from townsquare.statuses.entities import render_statuses
from townsquare.statuses.lookup import visible_status
from townsquare.statuses.models import Status
from townsquare.statuses.queries import AccountStatusFilter, account_statuses, thread_context
from townsquare.timelines.home import home_timeline
from townsquare.timelines.public import PublicFilter, TagFilter, public_timeline, tag_timeline
from townsquare.web.pages import WebRoute, fragment, render
from townsquare.web.sessions import session_viewer

router = APIRouter(route_class=WebRoute)

PAGE_SIZE = 20
PROFILE_TABS = {
    "posts": AccountStatusFilter(exclude_replies=True),
    "replies": AccountStatusFilter(),
    "media": AccountStatusFilter(only_media=True),
}


def page_of(request: Request) -> Page:
    raw = request.query_params.get("max_id")
    return Page(max_id=as_id(raw) if raw else None, limit=PAGE_SIZE)


async def feed(
    request: Request,
    template: str,
    statuses: Sequence[Status],
    viewer_id: int | None,
    *,
    title: str,
    stream: str | None = None,
    cursor: str | None = None,
    **context: Any,
) -> Response:
    """A page of posts, or only the posts when the page's script asks for the next ones."""
    state = app_state(request)
    async with state.db.read() as session:
        rendered = await render_statuses(session, state, viewer_id, statuses)
    next_max = str(statuses[-1].id) if len(statuses) >= PAGE_SIZE else None
    if cursor is not None:
        next_max = cursor
    if request.query_params.get("fragment"):
        me = (await session_viewer(request)).account
        html = fragment(request, "_feed_items.html", statuses=rendered, next_max=next_max, me=me)
        return HTMLResponse(html, headers={"Cache-Control": "no-store"})
    return await render(
        request,
        template,
        title=title,
        statuses=rendered,
        next_max=next_max,
        stream=stream,
        **context,
    )


@router.get("/")
async def home(request: Request) -> Response:
    viewer = await session_viewer(request)
    if viewer.account is None:
        return await public(request, landing=True)
    state = app_state(request)
    quote_of = None
    async with state.db.read() as session:
        statuses = await home_timeline(
            session,
            viewer.account.id,
            page_of(request),
            pull_threshold=state.settings.fanout_pull_threshold,
        )
        quoted = request.query_params.get("quote")
        if quoted:
            status = await visible_status(session, viewer.account.id, as_id(quoted))
            quote_of = (await render_statuses(session, state, viewer.account.id, [status]))[0]
    return await feed(
        request,
        "home.html",
        statuses,
        viewer.account.id,
        title="Home",
        stream="user",
        quote_of=quote_of,
    )


@router.get("/public")
async def public(request: Request, landing: bool = False) -> Response:
    viewer = await session_viewer(request)
    local = request.query_params.get("local") == "1"
    async with app_state(request).db.read() as session:
        statuses = await public_timeline(
            session, viewer.account_id, page_of(request), PublicFilter(local=local)
        )
    return await feed(
        request,
        "public.html",
        statuses,
        viewer.account_id,
        title="Explore" if not landing else "",
        stream="public/local" if local else "public",
        landing=landing,
    )


@router.get("/tags/{name}")
async def hashtag(name: str, request: Request) -> Response:
    viewer = await session_viewer(request)
    tag = name.strip().lstrip("#")
    if not tag or len(tag) > 100:
        raise not_found("Hashtag")
    async with app_state(request).db.read() as session:
        statuses = await tag_timeline(
            session, viewer.account_id, tag, page_of(request), PublicFilter(), TagFilter()
        )
    return await feed(
        request,
        "tag.html",
        statuses,
        viewer.account_id,
        title=f"#{tag}",
        stream=f"hashtag?tag={tag}",
        tag=tag,
    )


async def _profile_account(request: Request, username: str) -> Account:
    async with app_state(request).db.read() as session:
        account = await find_by_username(session, username.lstrip("@"))
    if account is None or account.suspended_at is not None:
        raise not_found("Account")
    return account


@router.get("/@{username}")
async def profile(username: str, request: Request, tab: str = "posts") -> Response:
    viewer = await session_viewer(request)
    account = await _profile_account(request, username)
    wanted = PROFILE_TABS.get(tab)
    if wanted is None:
        raise not_found("Tab")
    state = app_state(request)
    relationship = None
    async with state.db.read() as session:
        statuses = await account_statuses(
            session, viewer.account_id, account, wanted, page_of(request)
        )
        if viewer.account_id is not None and viewer.account_id != account.id:
            relationship = (await render_relationships(session, viewer.account_id, [account.id]))[0]
    return await feed(
        request,
        "profile.html",
        statuses,
        viewer.account_id,
        title=f"{account.display_name or account.username} (@{account.username})",
        account=account_entity(account, state.settings),
        relationship=relationship,
        tab=tab,
    )


@router.get("/@{username}/{status_id}")
async def thread(username: str, status_id: str, request: Request) -> Response:
    viewer = await session_viewer(request)
    state = app_state(request)
    async with state.db.read() as session:
        status = await visible_status(session, viewer.account_id, as_id(status_id))
        if status.reblog_of_id is not None:
            status = await visible_status(session, viewer.account_id, status.reblog_of_id)
        context = await thread_context(session, viewer.account_id, status)
        rendered = await render_statuses(
            session,
            state,
            viewer.account_id,
            [*context.ancestors, status, *context.descendants],
        )
    split = len(context.ancestors)
    if split >= len(rendered) or rendered[split]["id"] != str(status.id):
        raise ApiError(404, "Record not found")
    focus = rendered[split]
    if focus["account"]["username"].lower() != username.lstrip("@").lower():
        raise not_found()
    return await render(
        request,
        "thread.html",
        title=f"Post by @{focus['account']['username']}",
        ancestors=rendered[:split],
        focus=focus,
        replies=rendered[split + 1 :],
    )


@router.get("/web/statuses/{status_id}")
async def status_fragment(status_id: str, request: Request) -> Response:
    """One post's HTML, for a page that was told a new post arrived (privacy checked here)."""
    viewer = await session_viewer(request)
    state = app_state(request)
    async with state.db.read() as session:
        status = await visible_status(session, viewer.account_id, as_id(status_id))
        rendered = await render_statuses(session, state, viewer.account_id, [status])
    if not rendered:
        raise not_found()
    html = fragment(request, "_status.html", status=rendered[0], me=viewer.account)
    return HTMLResponse(html, headers={"Cache-Control": "no-store"})
