"""What a person does to another account: follow, block, mute, report."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from townsquare.api.errors import not_found
from townsquare.api.params import as_id
from townsquare.graph import service as graph
from townsquare.moderation.service import NewReport, file_report
from townsquare.state import app_state
from townsquare.web.forms import read_form, text
from townsquare.web.pages import WebRoute, back, render, require_login

router = APIRouter(route_class=WebRoute)

RELATIONSHIP_ACTIONS = (
    "follow",
    "unfollow",
    "block",
    "unblock",
    "mute",
    "unmute",
    "authorize",
    "reject",
)


@router.post("/accounts/{account_id}/{action}")
async def relationship(account_id: str, action: str, request: Request) -> Response:
    viewer = await require_login(request)
    params = await read_form(request)
    if action not in RELATIONSHIP_ACTIONS:
        raise not_found("Action")
    actor_id = viewer.require_account().id
    target_id = as_id(account_id)
    async with app_state(request).db.write() as session:
        if action == "follow":
            await graph.follow(session, actor_id, target_id, graph.FollowOptions())
        elif action == "unfollow":
            await graph.unfollow(session, actor_id, target_id)
        elif action == "block":
            await graph.block(session, actor_id, target_id)
        elif action == "unblock":
            await graph.unblock(session, actor_id, target_id)
        elif action == "mute":
            await graph.mute(session, actor_id, target_id)
        elif action == "authorize":
            await graph.authorize_follow_request(session, actor_id, target_id)
        elif action == "reject":
            await graph.reject_follow_request(session, actor_id, target_id)
        else:
            await graph.unmute(session, actor_id, target_id)
    return back(request, text(params, "next"))


@router.post("/reports")
async def report(request: Request) -> Response:
    viewer = await require_login(request)
    params = await read_form(request)
    status_id = text(params, "status_id")
    new = NewReport(
        target_account_id=as_id(text(params, "account_id")),
        status_ids=[as_id(status_id)] if status_id else [],
        comment=text(params, "comment").strip(),
    )
    async with app_state(request).db.write() as session:
        await file_report(session, viewer.require_account(), new)
    return await render(
        request,
        "notice.html",
        title="Report sent",
        message="Thank you. The moderators of this server will look at your report.",
    )
