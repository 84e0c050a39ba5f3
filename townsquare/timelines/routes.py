"""HTTP routes for timelines: home, public, hashtag and list; lists and markers are included."""

from __future__ import annotations

from collections.abc import Sequence

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import JSONResponse
from sqlalchemy.ext.asyncio import AsyncSession

from townsquare.api.auth import Viewer, anyone, user
from townsquare.api.errors import ApiError
from townsquare.api.pagination import Page, link_header, page_params
from townsquare.api.params import as_id, parse, read_params
from townsquare.api.responses import FastJSON
from townsquare.state import app_state
from townsquare.statuses.entities import render_statuses
from townsquare.statuses.models import Status
from townsquare.statuses.page_json import render_rows_json
from townsquare.statuses.page_reads import page_read
from townsquare.timelines import list_routes, marker_routes
from townsquare.timelines.home import big_authors, home_page_parts
from townsquare.timelines.lists import list_timeline
from townsquare.timelines.public import PublicFilter, TagFilter, public_timeline, tag_timeline
from townsquare.timelines.schemas import PublicQuery, TagQuery

router = APIRouter()


async def _render(
    request: Request, session: AsyncSession, viewer_id: int | None, statuses: Sequence[Status]
) -> JSONResponse:
    rendered = await render_statuses(session, app_state(request), viewer_id, statuses)
    response = FastJSON(rendered)
    link_header(request, response, [status.id for status in statuses])
    return response


async def _respond(
    request: Request, viewer_id: int | None, statuses: Sequence[Status]
) -> JSONResponse:
    async with app_state(request).db.read() as session:
        return await _render(request, session, viewer_id, statuses)


_home_reader = user("read:statuses")


async def home(request: Request) -> Response:
    # The busiest endpoint of all: a plain route, without FastAPI's dependency injection and
    # validation (about a tenth of a page's CPU); it checks the token and its scope itself.
    account = (await _home_reader(request)).require_account()
    page: Page = page_params(request)
    state = app_state(request)
    # One read session for the page and its rendering: the busiest endpoint of all. Its
    # statements are bounded by the page and use indexes throughout: a quick read. They run on
    # the driver's connection and the page is assembled from cached JSON
    # (townsquare/statuses/page_json.py).
    async with page_read(state.db) as read:
        big = await big_authors(state.extras).ids(
            read.rows, state.db.auth_generation, state.settings.fanout_pull_threshold
        )
        parts = await home_page_parts(read.rows, account.id, page, big_authors=big)
        body = await render_rows_json(read, state, account.id, parts)
    response = Response(body, media_type="application/json")
    link_header(request, response, [row[0] for row in parts.statuses])
    return response


router.add_route("/api/v1/timelines/home", home, methods=["GET"])


@router.get("/api/v1/timelines/public")
async def public(request: Request, viewer: Viewer = Depends(anyone)) -> Response:
    query = parse(PublicQuery, await read_params(request))
    page = page_params(request)
    where = PublicFilter(local=query.local, remote=query.remote, only_media=query.only_media)
    async with app_state(request).db.read() as session:
        statuses = await public_timeline(session, viewer.account_id, page, where)
    return await _respond(request, viewer.account_id, statuses)


@router.get("/api/v1/timelines/tag/{hashtag}")
async def tag(hashtag: str, request: Request, viewer: Viewer = Depends(anyone)) -> Response:
    query = parse(TagQuery, await read_params(request))
    page = page_params(request)
    where = PublicFilter(local=query.local, remote=query.remote, only_media=query.only_media)
    tags = TagFilter(any=query.any, all=query.all, none=query.none)
    async with app_state(request).db.read() as session:
        statuses = await tag_timeline(session, viewer.account_id, hashtag, page, where, tags)
    return await _respond(request, viewer.account_id, statuses)


@router.get("/api/v1/timelines/list/{list_id}")
async def list_statuses(
    list_id: str, request: Request, viewer: Viewer = Depends(user("read:lists"))
) -> Response:
    account = viewer.require_account()
    page = page_params(request)
    async with app_state(request).db.read() as session:
        statuses = await list_timeline(session, account.id, as_id(list_id), page)
    return await _respond(request, account.id, statuses)


@router.get("/api/v1/timelines/direct")
async def direct(_viewer: Viewer = Depends(user("read:statuses"))) -> Response:
    # Removed from Mastodon in favour of conversations; clients handle the 410.
    raise ApiError(410, "This API endpoint has been removed, use /api/v1/conversations")


# After the timelines themselves: a request is matched route by route, and the home timeline is
# read far more often than lists and markers.
router.include_router(list_routes.router)
router.include_router(marker_routes.router)
