"""Finding accounts: by exact address (lookup) and by prefix (the search box)."""

from __future__ import annotations

from sqlalchemy import case, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from townsquare.accounts.models import Account
from townsquare.accounts.service import find_by_username
from townsquare.config import Settings
from townsquare.graph.models import Follow
from townsquare.privacy import hidden_account_ids


def local_username(acct: str, settings: Settings) -> str | None:
    """``alice``, ``@alice`` and ``alice@<this domain>`` name a local account; others do not."""
    username, _, domain = acct.strip().lstrip("@").partition("@")
    if domain and domain.lower() != settings.domain.lower():
        return None
    return username or None


async def lookup(session: AsyncSession, settings: Settings, acct: str) -> Account | None:
    username = local_username(acct, settings)
    if username is None or len(username) > 30:
        return None
    return await find_by_username(session, username)


def _like_prefix(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return escaped + "%"


async def search_accounts(
    session: AsyncSession,
    settings: Settings,
    viewer_id: int | None,
    query: str,
    *,
    limit: int = 40,
    offset: int = 0,
    following: bool = False,
) -> list[Account]:
    """Accounts whose username or display name starts with ``query``: exact username first,
    then the most followed. Suspended accounts, and those blocked or muted either way, are left
    out."""
    text = query.strip().lstrip("@")
    username_part, _, domain = text.partition("@")
    if domain and domain.lower() != settings.domain.lower():
        return []
    text = username_part.strip().lower()
    if not text:
        return []
    pattern = _like_prefix(text)
    statement = select(Account).where(
        Account.suspended_at.is_(None),
        or_(
            Account.username_key.like(pattern, escape="\\"),
            func.lower(Account.display_name).like(pattern, escape="\\"),
        ),
    )
    hidden = await hidden_account_ids(session, viewer_id) if viewer_id is not None else set()
    if hidden:
        statement = statement.where(Account.id.not_in(hidden))
    if following and viewer_id is not None:
        statement = statement.where(
            Account.id.in_(select(Follow.target_account_id).where(Follow.account_id == viewer_id))
        )
    exact_first = case((Account.username_key == text, 0), else_=1)
    statement = (
        statement.order_by(exact_first, Account.followers_count.desc(), Account.id)
        .offset(offset)
        .limit(limit)
    )
    return list(await session.scalars(statement))
