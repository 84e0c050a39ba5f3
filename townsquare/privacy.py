"""Who may see which status: the one place the visibility rules are written down.

Every path that shows statuses (single status, threads, timelines, search, streaming,
notifications, conversations) goes through these three functions, so a rule changed here holds
everywhere:

- ``public`` and ``unlisted`` statuses are visible to everyone;
- ``private`` statuses to their author, the author's followers and the accounts they mention;
- ``direct`` statuses to their author and the accounts they mention;
- statuses of suspended accounts to no one;
- and between two accounts where either blocked the other, nothing at all.

Mutes hide an account from the muter's timelines and threads (``hidden_account_ids``) but do not
stop the muter from opening a status on purpose.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import ColumnElement, CompoundSelect, and_, exists, or_, select, true, union
from sqlalchemy.ext.asyncio import AsyncSession

from townsquare.accounts.models import Account
from townsquare.db.base import utcnow
from townsquare.graph.models import Block, Follow, Mute
from townsquare.statuses.models import Mention, Status

OPEN_VISIBILITIES = ("public", "unlisted")


def _suspended_authors() -> ColumnElement[bool]:
    return Status.account_id.in_(select(Account.id).where(Account.suspended_at.is_not(None)))


def _mentions_viewer(viewer_id: int) -> ColumnElement[bool]:
    return exists().where(Mention.status_id == Status.id, Mention.account_id == viewer_id)


def _viewer_follows_author(viewer_id: int) -> ColumnElement[bool]:
    return exists().where(
        Follow.account_id == viewer_id, Follow.target_account_id == Status.account_id
    )


def visible_to(viewer_id: int | None) -> ColumnElement[bool]:
    """A WHERE clause over :class:`Status` keeping the statuses ``viewer_id`` may see.

    Blocks are not part of this clause (they depend on the author, not on the status): combine it
    with ``Status.account_id.not_in(hidden_account_ids(...))`` wherever lists are built.
    """
    open_to_all = Status.visibility.in_(OPEN_VISIBILITIES)
    if viewer_id is None:
        return and_(open_to_all, ~_suspended_authors())
    return and_(
        ~_suspended_authors(),
        or_(
            open_to_all,
            Status.account_id == viewer_id,
            and_(
                Status.visibility == "private",
                or_(_viewer_follows_author(viewer_id), _mentions_viewer(viewer_id)),
            ),
            and_(Status.visibility == "direct", _mentions_viewer(viewer_id)),
        ),
    )


def not_hidden(hidden_ids: set[int]) -> ColumnElement[bool]:
    """A WHERE clause dropping statuses written by any of ``hidden_ids``."""
    if not hidden_ids:
        return true()
    return Status.account_id.not_in(hidden_ids)


async def blocked_either_way_ids(session: AsyncSession, viewer_id: int) -> set[int]:
    """Accounts the viewer blocked, and accounts that blocked the viewer."""
    rows = await session.execute(
        select(Block.target_account_id)
        .where(Block.account_id == viewer_id)
        .union(select(Block.account_id).where(Block.target_account_id == viewer_id))
    )
    return {row[0] for row in rows}


async def muted_ids(session: AsyncSession, viewer_id: int) -> set[int]:
    now = utcnow()
    rows = await session.execute(
        select(Mute.target_account_id).where(
            Mute.account_id == viewer_id,
            or_(Mute.expires_at.is_(None), Mute.expires_at > now),
        )
    )
    return {row[0] for row in rows}


async def suspended_ids(session: AsyncSession) -> set[int]:
    rows = await session.execute(select(Account.id).where(Account.suspended_at.is_not(None)))
    return {row[0] for row in rows}


def hidden_accounts_query(
    viewer_id: int | ColumnElement[int], now: ColumnElement[dt.datetime] | None = None
) -> CompoundSelect[int]:
    """The statement behind :func:`hidden_account_ids`, for callers that read it together with
    something else (the viewer's own id may be among its rows: leave it out). A statement built
    once passes bound parameters for ``viewer_id`` and ``now`` (the time mutes expire against)."""
    return union(
        select(Account.id).where(Account.suspended_at.is_not(None)),
        select(Block.target_account_id).where(Block.account_id == viewer_id),
        select(Block.account_id).where(Block.target_account_id == viewer_id),
        select(Mute.target_account_id).where(
            Mute.account_id == viewer_id,
            or_(Mute.expires_at.is_(None), Mute.expires_at > (utcnow() if now is None else now)),
        ),
    )


async def hidden_account_ids(session: AsyncSession, viewer_id: int | None) -> set[int]:
    """Accounts whose statuses the viewer should not be shown in lists: blocked either way,
    muted by the viewer, or suspended. One statement: this runs on every timeline read."""
    if viewer_id is None:
        return await suspended_ids(session)
    rows = await session.execute(hidden_accounts_query(viewer_id))
    hidden = {row[0] for row in rows}
    hidden.discard(viewer_id)
    return hidden


async def is_blocked_either_way(session: AsyncSession, a: int, b: int) -> bool:
    row = await session.execute(
        select(Block.id)
        .where(
            or_(
                and_(Block.account_id == a, Block.target_account_id == b),
                and_(Block.account_id == b, Block.target_account_id == a),
            )
        )
        .limit(1)
    )
    return row.first() is not None


async def can_view_status(session: AsyncSession, viewer_id: int | None, status: Status) -> bool:
    """Whether ``viewer_id`` (None: anonymous) may see ``status``.

    A reblog is visible when both the reblog and the reblogged status are.
    """
    if status.reblog_of_id is not None:
        original = await session.get(Status, status.reblog_of_id)
        if original is None or not await _can_view_one(session, viewer_id, original):
            return False
    return await _can_view_one(session, viewer_id, status)


async def _can_view_one(session: AsyncSession, viewer_id: int | None, status: Status) -> bool:
    author = await session.get(Account, status.account_id)
    if author is None or author.suspended_at is not None:
        return False
    if (
        viewer_id is not None
        and viewer_id != status.account_id
        and await is_blocked_either_way(session, viewer_id, status.account_id)
    ):
        return False
    if status.visibility in OPEN_VISIBILITIES:
        return True
    if viewer_id is None:
        return False
    if viewer_id == status.account_id:
        return True
    mentioned = await session.execute(
        select(Mention.account_id).where(
            Mention.status_id == status.id, Mention.account_id == viewer_id
        )
    )
    if mentioned.first() is not None:
        return True
    if status.visibility == "private":
        following = await session.execute(
            select(Follow.id).where(
                Follow.account_id == viewer_id, Follow.target_account_id == status.account_id
            )
        )
        return following.first() is not None
    return False


__all__ = [
    "OPEN_VISIBILITIES",
    "blocked_either_way_ids",
    "can_view_status",
    "hidden_account_ids",
    "is_blocked_either_way",
    "muted_ids",
    "not_hidden",
    "visible_to",
]
