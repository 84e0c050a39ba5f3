"""Moderation pages for moderators and admins: the reports queue, actions, removing posts."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import RedirectResponse, Response

from townsquare.accounts.models import Account
from townsquare.api.auth import Viewer
from townsquare.api.errors import ApiError, forbidden, not_found
from townsquare.api.pagination import Page
from townsquare.api.params import as_id
from townsquare.moderation.entities import admin_report_entities
from townsquare.moderation.service import (
    ACTIONS,
    ReportFilter,
    _check_may_act,
    get_report,
    list_reports,
    resolve,
    take_action,
)
from townsquare.state import app_state
from townsquare.statuses.edit import delete_status
from townsquare.statuses.models import Status
from townsquare.web.forms import read_form, text
from townsquare.web.pages import WebRoute, render, require_login

router = APIRouter(route_class=WebRoute)


async def require_moderator(request: Request) -> Viewer:
    viewer = await require_login(request)
    if not viewer.require_account().is_moderator:
        raise forbidden("Only moderators can see this page")
    return viewer


@router.get("/moderation")
async def reports_queue(request: Request, resolved: bool = False) -> Response:
    viewer = await require_moderator(request)
    state = app_state(request)
    me = viewer.require_account()
    async with state.db.read() as session:
        reports = await list_reports(session, ReportFilter(resolved=resolved), Page(limit=40))
        rendered = await admin_report_entities(session, state, me.id, reports)
    return await render(
        request,
        "moderation.html",
        title="Reports",
        reports=rendered,
        resolved=resolved,
        actions=[a for a in ACTIONS if a != "none"],
    )


@router.post("/moderation/reports/{report_id}")
async def act_on_report(report_id: str, request: Request) -> Response:
    viewer = await require_moderator(request)
    params = await read_form(request)
    me = viewer.require_account()
    action = text(params, "action")
    async with app_state(request).db.write() as session:
        report = await get_report(session, as_id(report_id))
        if action == "resolve":
            resolve(report, me)
        elif action in ACTIONS:
            target = await session.get(Account, report.target_account_id)
            if target is None:
                raise not_found()
            await take_action(session, me, target, action, report)
        else:
            raise ApiError(422, "Choose an action")
    return RedirectResponse("/moderation", status_code=303)


@router.post("/moderation/statuses/{status_id}/remove")
async def remove_status(status_id: str, request: Request) -> Response:
    viewer = await require_moderator(request)
    await read_form(request)
    me = viewer.require_account()
    async with app_state(request).db.write() as session:
        status = await session.get(Status, as_id(status_id))
        if status is None:
            raise not_found()
        author = await session.get(Account, status.account_id)
        if author is None:
            raise not_found()
        _check_may_act(me, author)
        await delete_status(session, author, status.id)
    return RedirectResponse("/moderation", status_code=303)
