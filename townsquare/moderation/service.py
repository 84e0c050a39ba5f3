"""Reports, and what moderators (and the operator's CLI) do about accounts. No web framework."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from townsquare.accounts.models import ROLES, Account
from townsquare.accounts.service import find_by_username
from townsquare.api.errors import forbidden, not_found, unprocessable
from townsquare.api.pagination import Page
from townsquare.db.base import utcnow
from townsquare.ids import new_id
from townsquare.moderation.models import Report
from townsquare.notifications.service import notify
from townsquare.oauth.models import OAuthToken
from townsquare.statuses.models import Status

CATEGORIES = ("spam", "legal", "violation", "other")
ACTIONS = ("none", "sensitive", "disable", "silence", "suspend")
MAX_COMMENT = 1000
MAX_REPORTED_STATUSES = 100


async def account_named(session: AsyncSession, username: str) -> Account:
    account = await find_by_username(session, username.lstrip("@"))
    if account is None:
        raise not_found("Account")
    return account


async def promote(session: AsyncSession, username: str, role: str) -> Account:
    if role not in ROLES:
        raise unprocessable(f"role must be one of {', '.join(ROLES)}")
    account = await account_named(session, username)
    account.role = role
    return account


async def _revoke_tokens(session: AsyncSession, account_id: int) -> None:
    await session.execute(
        update(OAuthToken)
        .where(OAuthToken.account_id == account_id, OAuthToken.revoked_at.is_(None))
        .values(revoked_at=utcnow())
        .execution_options(synchronize_session=False)
    )


def suspend_account(account: Account) -> None:
    # Tokens stay: the API already refuses every token of a suspended account, and lifting the
    # suspension should give the person their apps back.
    if account.suspended_at is None:
        account.suspended_at = utcnow()


async def suspend(session: AsyncSession, username: str) -> Account:
    account = await account_named(session, username)
    suspend_account(account)
    return account


async def unsuspend(session: AsyncSession, username: str) -> Account:
    account = await account_named(session, username)
    account.suspended_at = None
    return account


async def set_verified(session: AsyncSession, username: str, verified: bool) -> Account:
    account = await account_named(session, username)
    account.verified = verified
    return account


@dataclass(frozen=True)
class NewReport:
    target_account_id: int
    status_ids: list[int]
    comment: str = ""
    category: str = "other"
    rule_ids: list[int] | None = None
    forward: bool = False


async def file_report(session: AsyncSession, reporter: Account, new: NewReport) -> Report:
    """Record a report and tell every moderator about it."""
    target = await session.get(Account, new.target_account_id)
    if target is None:
        raise not_found()
    if target.id == reporter.id:
        raise unprocessable("you cannot report yourself")
    if new.category not in CATEGORIES:
        raise unprocessable(f"category must be one of {', '.join(CATEGORIES)}")
    if len(new.comment) > MAX_COMMENT:
        raise unprocessable(f"comment is longer than {MAX_COMMENT} characters")
    if new.rule_ids:
        # The instance publishes no rules, so no rule id can name one.
        raise unprocessable("rule_ids names rules this server does not have")
    status_ids = list(dict.fromkeys(new.status_ids))
    if len(status_ids) > MAX_REPORTED_STATUSES:
        raise unprocessable(f"at most {MAX_REPORTED_STATUSES} statuses")
    if status_ids:
        found = set(
            await session.scalars(
                select(Status.id).where(Status.id.in_(status_ids), Status.account_id == target.id)
            )
        )
        if found != set(status_ids):
            raise unprocessable("status_ids must be statuses of the reported account")
    now = utcnow()
    report = Report(
        id=new_id(),
        account_id=reporter.id,
        target_account_id=target.id,
        status_ids=status_ids,
        rule_ids=[],
        comment=new.comment,
        category=new.category,
        forwarded=False,
        created_at=now,
        updated_at=now,
    )
    session.add(report)
    await session.flush()
    moderators = await session.scalars(
        select(Account.id).where(
            Account.role.in_(("moderator", "admin")), Account.suspended_at.is_(None)
        )
    )
    for moderator_id in moderators:
        if moderator_id != target.id:
            await notify(
                session,
                recipient_id=moderator_id,
                from_account_id=reporter.id,
                type="admin.report",
                report_id=report.id,
            )
    return report


@dataclass(frozen=True)
class ReportFilter:
    resolved: bool = False
    account_id: int | None = None
    target_account_id: int | None = None


def reports_query(which: ReportFilter) -> Select[Any]:
    query = select(Report)
    if which.resolved:
        query = query.where(Report.action_taken_at.is_not(None))
    else:
        query = query.where(Report.action_taken_at.is_(None))
    if which.account_id is not None:
        query = query.where(Report.account_id == which.account_id)
    if which.target_account_id is not None:
        query = query.where(Report.target_account_id == which.target_account_id)
    return query


async def list_reports(session: AsyncSession, which: ReportFilter, page: Page) -> list[Report]:
    rows = await session.scalars(page.apply(reports_query(which), Report.id))
    return page.finish(list(rows))


async def get_report(session: AsyncSession, report_id: int) -> Report:
    report = await session.get(Report, report_id)
    if report is None:
        raise not_found()
    return report


def resolve(report: Report, moderator: Account) -> None:
    if report.action_taken_at is None:
        report.action_taken_at = utcnow()
        report.action_taken_by_id = moderator.id
        report.updated_at = utcnow()


def reopen(report: Report) -> None:
    report.action_taken_at = None
    report.action_taken_by_id = None
    report.updated_at = utcnow()


def _check_may_act(moderator: Account, target: Account) -> None:
    if moderator.id == target.id:
        raise forbidden("You cannot moderate your own account")
    if target.is_admin or (target.is_moderator and not moderator.is_admin):
        raise forbidden("You cannot moderate an account with this role")


async def take_action(
    session: AsyncSession,
    moderator: Account,
    target: Account,
    action: str,
    report: Report | None = None,
) -> None:
    """Apply a moderation action; a report it answers (and, Mastodon-like, every other open
    report about the account) is resolved with it."""
    if action not in ACTIONS:
        raise unprocessable(f"type must be one of {', '.join(ACTIONS)}")
    if report is not None and report.target_account_id != target.id:
        raise unprocessable("the report is about another account")
    _check_may_act(moderator, target)
    now = utcnow()
    if action == "sensitive" and target.sensitized_at is None:
        target.sensitized_at = now
    elif action == "disable" and target.disabled_at is None:
        target.disabled_at = now
        await _revoke_tokens(session, target.id)
    elif action == "silence" and target.silenced_at is None:
        target.silenced_at = now
    elif action == "suspend":
        suspend_account(target)
    if report is not None:
        resolve(report, moderator)
    if action != "none":
        open_reports = await session.scalars(
            reports_query(ReportFilter(resolved=False, target_account_id=target.id))
        )
        for other in open_reports:
            if isinstance(other, Report):
                resolve(other, moderator)


def lift(target: Account, what: str) -> None:
    """Undo one action: ``unsuspend``, ``unsilence``, ``unsensitive`` or ``enable``."""
    column = {
        "unsuspend": "suspended_at",
        "unsilence": "silenced_at",
        "unsensitive": "sensitized_at",
        "enable": "disabled_at",
    }[what]
    setattr(target, column, None)


@dataclass(frozen=True)
class AccountFilter:
    status: str | None = None
    username: str | None = None
    email: str | None = None
    role: str | None = None


_STATUS_COLUMNS = {
    "suspended": Account.suspended_at,
    "silenced": Account.silenced_at,
    "disabled": Account.disabled_at,
    "sensitized": Account.sensitized_at,
}


async def list_accounts(session: AsyncSession, which: AccountFilter, page: Page) -> list[Account]:
    query = select(Account)
    if which.status == "active":
        query = query.where(Account.suspended_at.is_(None), Account.disabled_at.is_(None))
    elif which.status is not None:
        query = query.where(_STATUS_COLUMNS[which.status].is_not(None))
    if which.username:
        query = query.where(
            Account.username_key.startswith(which.username.lower(), autoescape=True)
        )
    if which.email:
        query = query.where(func.lower(Account.email) == which.email.lower())
    if which.role:
        query = query.where(Account.role == which.role)
    rows = await session.scalars(page.apply(query, Account.id))
    return page.finish(list(rows))
