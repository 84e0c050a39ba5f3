"""The ``Report`` entity (what a reporter sees) and the admin API's ``Admin::Report`` and
``Admin::Account``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from townsquare.accounts.entities import account_entity, iso_time, load_accounts, role_entity
from townsquare.accounts.models import Account
from townsquare.moderation.models import Report
from townsquare.state import AppState
from townsquare.statuses.entities import render_statuses
from townsquare.statuses.models import Status


def report_entity(report: Report, target: Account, state: AppState) -> dict[str, Any]:
    return {
        "id": str(report.id),
        "action_taken": report.action_taken_at is not None,
        "action_taken_at": iso_time(report.action_taken_at) if report.action_taken_at else None,
        "category": report.category,
        "comment": report.comment,
        "forwarded": report.forwarded,
        "created_at": iso_time(report.created_at),
        "status_ids": [str(i) for i in report.status_ids] or None,
        "rule_ids": [str(i) for i in report.rule_ids] or None,
        "target_account": account_entity(target, state.settings),
    }


def admin_account_entity(account: Account, state: AppState) -> dict[str, Any]:
    return {
        "id": str(account.id),
        "username": account.username,
        "domain": None,
        "created_at": iso_time(account.created_at),
        "email": account.email,
        "ip": None,
        "ips": [],
        "locale": account.locale,
        "invite_request": None,
        "role": role_entity(account),
        "confirmed": True,
        "approved": True,
        "disabled": account.disabled_at is not None,
        "silenced": account.silenced_at is not None,
        "suspended": account.suspended_at is not None,
        "sensitized": account.sensitized_at is not None,
        "account": account_entity(account, state.settings),
    }


async def admin_report_entities(
    session: AsyncSession, state: AppState, moderator_id: int, reports: Sequence[Report]
) -> list[dict[str, Any]]:
    """Admin::Report entities for ``reports``, loading their accounts and statuses in batches."""
    account_ids: set[int] = set()
    status_ids: set[int] = set()
    for report in reports:
        account_ids.update({report.account_id, report.target_account_id})
        if report.action_taken_by_id is not None:
            account_ids.add(report.action_taken_by_id)
        status_ids.update(report.status_ids)
    accounts = await load_accounts(session, account_ids)
    statuses = list(await session.scalars(select(Status).where(Status.id.in_(status_ids))))
    # Moderators see reported statuses whatever their visibility: that is what they judge.
    rendered = await render_statuses(session, state, moderator_id, statuses)
    by_id = {entity["id"]: entity for entity in rendered}

    def admin_account(account_id: int | None) -> dict[str, Any] | None:
        account = accounts.get(account_id) if account_id is not None else None
        return admin_account_entity(account, state) if account is not None else None

    return [
        {
            "id": str(report.id),
            "action_taken": report.action_taken_at is not None,
            "action_taken_at": (
                iso_time(report.action_taken_at) if report.action_taken_at else None
            ),
            "category": report.category,
            "comment": report.comment,
            "forwarded": report.forwarded,
            "created_at": iso_time(report.created_at),
            "updated_at": iso_time(report.updated_at),
            "account": admin_account(report.account_id),
            "target_account": admin_account(report.target_account_id),
            "assigned_account": None,
            "action_taken_by_account": admin_account(report.action_taken_by_id),
            "statuses": [by_id[str(i)] for i in report.status_ids if str(i) in by_id],
            "rules": [],
        }
        for report in reports
    ]
