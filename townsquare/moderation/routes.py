"""Reports from users, and the subset of Mastodon's admin API moderators need to act on them."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request, Response
from pydantic import BaseModel, Field

from townsquare.accounts.models import Account
from townsquare.api.auth import Viewer, moderator, user
from townsquare.api.pagination import link_header, page_params
from townsquare.api.params import as_id, as_list, parse, read_params
from townsquare.moderation import admin_accounts, service
from townsquare.moderation.entities import admin_report_entities, report_entity
from townsquare.state import app_state

router = APIRouter()
router.include_router(admin_accounts.router)


class ReportForm(BaseModel):
    account_id: str
    comment: str = Field("", max_length=service.MAX_COMMENT)
    category: str | None = None
    forward: bool = False


@router.post("/api/v1/reports")
async def file_report(
    request: Request, viewer: Viewer = Depends(user("write:reports"))
) -> dict[str, Any]:
    params = await read_params(request)
    form = parse(ReportForm, params)
    rule_ids = [as_id(value) for value in as_list(params.get("rule_ids"))]
    new = service.NewReport(
        target_account_id=as_id(form.account_id),
        status_ids=[as_id(value) for value in as_list(params.get("status_ids"))],
        comment=form.comment,
        category=form.category or ("violation" if rule_ids else "other"),
        rule_ids=rule_ids,
        forward=form.forward,
    )
    state = app_state(request)
    async with state.db.write() as session:
        reporter = await session.get(Account, viewer.require_account().id)
        assert reporter is not None
        report = await service.file_report(session, reporter, new)
        target = await session.get(Account, report.target_account_id)
        assert target is not None
        return report_entity(report, target, state)


class ReportListQuery(BaseModel):
    resolved: bool = False
    account_id: str | None = None
    target_account_id: str | None = None


@router.get("/api/v1/admin/reports")
async def admin_reports(
    request: Request,
    response: Response,
    viewer: Viewer = Depends(moderator("admin:read:reports")),
) -> list[dict[str, Any]]:
    query = parse(ReportListQuery, await read_params(request))
    which = service.ReportFilter(
        resolved=query.resolved,
        account_id=as_id(query.account_id) if query.account_id else None,
        target_account_id=as_id(query.target_account_id) if query.target_account_id else None,
    )
    page = page_params(request, default=100, maximum=200)
    state = app_state(request)
    async with state.db.read() as session:
        reports = await service.list_reports(session, which, page)
        entities = await admin_report_entities(session, state, viewer.require_account().id, reports)
    link_header(request, response, [report.id for report in reports])
    return entities


async def _report_answer(request: Request, viewer: Viewer, report_id: str, change: str) -> Any:
    state = app_state(request)
    async with state.db.write() as session:
        report = await service.get_report(session, as_id(report_id))
        acting = await session.get(Account, viewer.require_account().id)
        assert acting is not None
        if change == "resolve":
            service.resolve(report, acting)
        elif change == "reopen":
            service.reopen(report)
        await session.flush()
        (entity,) = await admin_report_entities(session, state, acting.id, [report])
        return entity


@router.get("/api/v1/admin/reports/{report_id}")
async def admin_report(
    request: Request, report_id: str, viewer: Viewer = Depends(moderator("admin:read:reports"))
) -> dict[str, Any]:
    entity: dict[str, Any] = await _report_answer(request, viewer, report_id, "show")
    return entity


@router.post("/api/v1/admin/reports/{report_id}/resolve")
async def resolve_report(
    request: Request, report_id: str, viewer: Viewer = Depends(moderator("admin:write:reports"))
) -> dict[str, Any]:
    entity: dict[str, Any] = await _report_answer(request, viewer, report_id, "resolve")
    return entity


@router.post("/api/v1/admin/reports/{report_id}/reopen")
async def reopen_report(
    request: Request, report_id: str, viewer: Viewer = Depends(moderator("admin:write:reports"))
) -> dict[str, Any]:
    entity: dict[str, Any] = await _report_answer(request, viewer, report_id, "reopen")
    return entity
