"""Finding accounts by name and hashtags by prefix."""

from __future__ import annotations

from sqlalchemy import case, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from townsquare.accounts.models import Account
from townsquare.graph.models import Follow
from townsquare.privacy import blocked_either_way_ids
from townsquare.statuses.models import Tag


def like_prefix(value: str) -> str:
    """A LIKE pattern matching ``value`` literally at the start (``%`` and ``_`` escaped)."""
    escaped = value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return escaped + "%"


def account_term(q: str, local_domain: str) -> tuple[str, bool] | None:
    """What to look for in ``q`` (``name``, ``@name`` or ``name@domain``), and whether it must
    match a username exactly. None when it names an account on another server."""
    term = q.strip().lstrip("@")
    username, at, domain = term.partition("@")
    if at:
        if domain.lower() != local_domain.lower():
            return None
        return username, True
    return term, False


async def search_accounts(
    session: AsyncSession,
    viewer_id: int | None,
    q: str,
    local_domain: str,
    *,
    limit: int,
    offset: int = 0,
    following: bool = False,
) -> list[Account]:
    """Accounts whose username or display name starts with the term; exact username first."""
    found = account_term(q, local_domain)
    if found is None or not found[0]:
        return []
    term, exact = found
    key = term.lower()
    statement = select(Account).where(Account.suspended_at.is_(None))
    if exact:
        statement = statement.where(Account.username_key == key)
    else:
        pattern = like_prefix(key)
        statement = statement.where(
            Account.username_key.like(pattern, escape="\\")
            | func.lower(Account.display_name).like(pattern, escape="\\")
        )
    if viewer_id is not None:
        blocked = await blocked_either_way_ids(session, viewer_id)
        if blocked:
            statement = statement.where(Account.id.not_in(blocked))
        if following:
            statement = statement.where(
                Account.id.in_(
                    select(Follow.target_account_id).where(Follow.account_id == viewer_id)
                )
            )
    exact_first = case((Account.username_key == key, 0), else_=1)
    statement = statement.order_by(exact_first, Account.followers_count.desc(), Account.id)
    return list(await session.scalars(statement.limit(limit).offset(offset)))


async def search_tags(session: AsyncSession, q: str, *, limit: int, offset: int = 0) -> list[Tag]:
    """Hashtags starting with ``q`` (a leading ``#`` is ignored); exact match first."""
    key = q.strip().lstrip("#").lower()
    if not key or any(ch.isspace() for ch in key):
        return []
    exact_first = case((Tag.name_key == key, 0), else_=1)
    statement = (
        select(Tag)
        .where(Tag.name_key.like(like_prefix(key), escape="\\"))
        .order_by(exact_first, Tag.last_status_at.desc().nulls_last(), Tag.name_key)
        .limit(limit)
        .offset(offset)
    )
    return list(await session.scalars(statement))
