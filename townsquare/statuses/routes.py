"""HTTP routes for statuses: posting, reading, editing and deleting, and their threads.

Actions on statuses, lists of statuses and polls have routes of their own modules; their routers
are included here so the app sees one statuses router.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request, Response

from townsquare.api.auth import Viewer, anyone, user
from townsquare.api.errors import ApiError
from townsquare.api.params import as_id, as_list, parse, read_params
from townsquare.api.responses import FastJSON
from townsquare.db.group_commit import group_commit
from townsquare.jobs.queue import wake_runners
from townsquare.privacy import can_view_status
from townsquare.state import app_state
from townsquare.statuses import action_routes, list_routes, poll_routes
from townsquare.statuses.create import plain_draft, write_plain_status, write_status
from townsquare.statuses.edit import delete_status, edit_status, history
from townsquare.statuses.entities import edit_entity, render_status, render_statuses
from townsquare.statuses.interactions import unreblog
from townsquare.statuses.lookup import visible_status
from townsquare.statuses.models import Status
from townsquare.statuses.posted import author_entity, posted_entity, render_posted
from townsquare.statuses.queries import thread_context
from townsquare.statuses.schemas import StatusChanges, StatusDraft

router = APIRouter()

MAX_STATUSES_AT_ONCE = 40


_poster = user("write:statuses")


async def post_status(request: Request) -> Response:
    # The busiest write: a plain route, without FastAPI's dependency injection and response
    # validation; it checks the token and its scope itself (as the home timeline does).
    viewer = await _poster(request)
    author = viewer.require_account()
    state = app_state(request)
    draft = parse(StatusDraft, await read_params(request))
    key = request.headers.get("idempotency-key") or None
    grouped = group_commit(state.extras, state.db)
    plain = plain_draft(state.settings, author, draft) if key is None else None
    if plain is not None:
        # Nothing but the status, its author's counter and its fan-out job: three statements
        # on the driver's connection, and the answer made from what they wrote and returned.
        written = await grouped.run_driver(
            lambda connection: write_plain_status(
                connection, author, plain, application_id=viewer.app_id
            )
        )
        wake_runners()
        entity = posted_entity(
            state,
            author.id,
            written.status,
            author_entity(state, written.author),
            written.application,
        )
        return FastJSON(entity)
    # Concurrent posts of this worker share a transaction and its commit (on SQLite).
    async with grouped.write() as session:
        posted = await write_status(
            session,
            state.settings,
            author,
            draft,
            application_id=viewer.app_id,
            idempotency_key=key,
        )
    # Rendered after the commit: on SQLite the write lock is held for the writing only. From
    # what was written, with the author's entity read back: a quick read.
    async with state.db.quick_read() as session:
        return FastJSON(await render_posted(session, state, author.id, posted))


router.add_route("/api/v1/statuses", post_status, methods=["POST"])


@router.get("/api/v1/statuses")
async def show_many(request: Request, viewer: Viewer = Depends(anyone)) -> list[dict[str, Any]]:
    state = app_state(request)
    raw = as_list(request.query_params.getlist("id[]") or request.query_params.getlist("id"))
    if len(raw) > MAX_STATUSES_AT_ONCE:
        raise ApiError(422, f"Validation failed: at most {MAX_STATUSES_AT_ONCE} ids at once")
    ids: list[int] = []
    for value in raw:
        try:
            ids.append(as_id(value))
        except ApiError:
            continue
    async with state.db.read() as session:
        found = []
        for status_id in dict.fromkeys(ids):
            status = await session.get(Status, status_id)
            if status is not None and await can_view_status(session, viewer.account_id, status):
                found.append(status)
        return await render_statuses(session, state, viewer.account_id, found)


@router.get("/api/v1/statuses/{status_id}")
async def show_status(
    status_id: str, request: Request, viewer: Viewer = Depends(anyone)
) -> dict[str, Any]:
    state = app_state(request)
    async with state.db.read() as session:
        status = await visible_status(session, viewer.account_id, as_id(status_id))
        return await render_status(session, state, viewer.account_id, status)


@router.get("/api/v1/statuses/{status_id}/context")
async def show_context(
    status_id: str, request: Request, viewer: Viewer = Depends(anyone)
) -> dict[str, Any]:
    state = app_state(request)
    async with state.db.read() as session:
        status = await visible_status(session, viewer.account_id, as_id(status_id))
        if status.reblog_of_id is not None:
            status = await visible_status(session, viewer.account_id, status.reblog_of_id)
        thread = await thread_context(session, viewer.account_id, status)
        rendered = await render_statuses(
            session, state, viewer.account_id, [*thread.ancestors, *thread.descendants]
        )
    split = len(thread.ancestors)
    return {"ancestors": rendered[:split], "descendants": rendered[split:]}


@router.put("/api/v1/statuses/{status_id}")
async def update_status(
    status_id: str, request: Request, viewer: Viewer = Depends(user("write:statuses"))
) -> dict[str, Any]:
    state = app_state(request)
    author = viewer.require_account()
    changes = parse(StatusChanges, await read_params(request))
    async with state.db.write() as session:
        status = await edit_status(session, state.settings, author, as_id(status_id), changes)
        return await render_status(session, state, author.id, status)


@router.delete("/api/v1/statuses/{status_id}")
async def remove_status(
    status_id: str, request: Request, viewer: Viewer = Depends(user("write:statuses"))
) -> dict[str, Any]:
    state = app_state(request)
    author = viewer.require_account()
    async with state.db.write() as session:
        status = await visible_status(session, author.id, as_id(status_id))
        # Rendered before it goes: clients use ``text`` to offer "delete and redraft".
        entity = await render_status(session, state, author.id, status)
        if status.reblog_of_id is not None and status.account_id == author.id:
            # Deleting one's own reblog is undoing it.
            await unreblog(session, author, status.reblog_of_id)
        else:
            await delete_status(session, author, status.id)
    entity["text"] = status.text
    return entity


@router.get("/api/v1/statuses/{status_id}/history")
async def show_history(
    status_id: str, request: Request, viewer: Viewer = Depends(anyone)
) -> list[dict[str, Any]]:
    state = app_state(request)
    async with state.db.read() as session:
        status = await visible_status(session, viewer.account_id, as_id(status_id))
        edits = await history(session, status)
        return await edit_entity(session, state, status, edits)


@router.get("/api/v1/statuses/{status_id}/source")
async def show_source(
    status_id: str, request: Request, viewer: Viewer = Depends(user("read:statuses"))
) -> dict[str, Any]:
    state = app_state(request)
    author = viewer.require_account()
    async with state.db.read() as session:
        status = await visible_status(session, author.id, as_id(status_id))
    return {"id": str(status.id), "text": status.text, "spoiler_text": status.spoiler_text}


# After the statuses' own routes: a request is matched route by route, and posting is the
# busiest of them.
router.include_router(action_routes.router)
router.include_router(list_routes.router)
router.include_router(poll_routes.router)
