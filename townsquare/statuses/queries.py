"""Reading statuses in bulk for a viewer: threads, an account's statuses, favourites, bookmarks."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import Select, exists, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from townsquare.accounts.models import Account
from townsquare.api.pagination import Page
from townsquare.media.models import MediaAttachment
from townsquare.privacy import hidden_account_ids, is_blocked_either_way, not_hidden, visible_to
from townsquare.statuses.models import Bookmark, Favourite, Pin, Status, StatusTag, Tag

MAX_ANCESTORS = 40
MAX_DESCENDANTS = 4096


async def _viewable(
    session: AsyncSession, viewer_id: int | None, ids: Sequence[int], hidden: set[int]
) -> set[int]:
    if not ids:
        return set()
    rows = await session.scalars(
        select(Status.id).where(Status.id.in_(ids), visible_to(viewer_id), not_hidden(hidden))
    )
    return set(rows)


async def drop_unviewable_reblogs(
    session: AsyncSession, viewer_id: int | None, statuses: Sequence[Status], hidden: set[int]
) -> list[Status]:
    """Reblogs whose original the viewer may not see (or whose author they blocked) go."""
    originals = [s.reblog_of_id for s in statuses if s.reblog_of_id is not None]
    allowed = await _viewable(session, viewer_id, originals, hidden)
    return [s for s in statuses if s.reblog_of_id is None or s.reblog_of_id in allowed]


@dataclass
class Thread:
    ancestors: list[Status]
    descendants: list[Status]


async def thread_context(session: AsyncSession, viewer_id: int | None, status: Status) -> Thread:
    """Ancestors oldest first; descendants depth first, each level oldest first (as Mastodon)."""
    hidden = await hidden_account_ids(session, viewer_id)
    chain: list[Status] = []
    parent_id = status.in_reply_to_id
    seen = {status.id}
    while parent_id is not None and parent_id not in seen and len(chain) < MAX_ANCESTORS:
        seen.add(parent_id)
        parent = await session.get(Status, parent_id)
        if parent is None:
            break
        chain.append(parent)
        parent_id = parent.in_reply_to_id
    allowed = await _viewable(session, viewer_id, [s.id for s in chain], hidden)
    ancestors = [s for s in reversed(chain) if s.id in allowed]

    root = status.thread_id or status.id
    in_thread = list(
        await session.scalars(
            select(Status)
            .where(
                Status.thread_id == root,
                Status.id > status.id,
                Status.reblog_of_id.is_(None),
                visible_to(viewer_id),
                not_hidden(hidden),
            )
            .order_by(Status.id)
            .limit(MAX_DESCENDANTS)
        )
    )
    children: dict[int, list[Status]] = {}
    for reply in in_thread:
        if reply.in_reply_to_id is not None:
            children.setdefault(reply.in_reply_to_id, []).append(reply)
    descendants: list[Status] = []
    stack = list(reversed(children.get(status.id, [])))
    while stack:
        reply = stack.pop()
        descendants.append(reply)
        stack.extend(reversed(children.get(reply.id, [])))
    return Thread(ancestors=ancestors, descendants=descendants)


@dataclass(frozen=True)
class AccountStatusFilter:
    only_media: bool = False
    exclude_replies: bool = False
    exclude_reblogs: bool = False
    pinned: bool = False
    tagged: str | None = None


async def account_statuses(
    session: AsyncSession,
    viewer_id: int | None,
    account: Account,
    wanted: AccountStatusFilter,
    page: Page,
) -> list[Status]:
    if account.suspended_at is not None:
        return []
    if (
        viewer_id is not None
        and viewer_id != account.id
        and await is_blocked_either_way(session, viewer_id, account.id)
    ):
        return []
    query = select(Status).where(Status.account_id == account.id, visible_to(viewer_id))
    if wanted.pinned:
        query = query.where(
            exists().where(Pin.account_id == account.id, Pin.status_id == Status.id)
        )
    if wanted.only_media:
        query = query.where(exists().where(MediaAttachment.status_id == Status.id))
    if wanted.exclude_replies:
        # A reply to oneself continues a thread and stays, as in Mastodon.
        query = query.where(
            or_(Status.in_reply_to_id.is_(None), Status.in_reply_to_account_id == account.id)
        )
    if wanted.exclude_reblogs or wanted.only_media or wanted.tagged or wanted.pinned:
        query = query.where(Status.reblog_of_id.is_(None))
    if wanted.tagged:
        query = query.where(
            exists().where(
                StatusTag.status_id == Status.id,
                StatusTag.tag_id == Tag.id,
                Tag.name_key == wanted.tagged.lower().lstrip("#"),
            )
        )
    rows = page.finish((await session.scalars(page.apply(query, Status.id))).all())
    hidden = await hidden_account_ids(session, viewer_id)
    hidden.discard(account.id)
    return await drop_unviewable_reblogs(session, viewer_id, rows, hidden)


async def marked_statuses(
    session: AsyncSession,
    viewer_id: int,
    mark: type[Favourite] | type[Bookmark],
    page: Page,
) -> list[tuple[int, Status]]:
    """The viewer's favourites or bookmarks, newest first, as (mark id, status) pairs."""
    hidden = await hidden_account_ids(session, viewer_id)
    query = (
        select(mark.id, Status)
        .join(Status, Status.id == mark.status_id)
        .where(mark.account_id == viewer_id, visible_to(viewer_id), not_hidden(hidden))
    )
    rows = page.finish((await session.execute(page.apply(cast(Select[Any], query), mark.id))).all())
    return [(mark_id, status) for mark_id, status in rows]


async def favouriters(
    session: AsyncSession, viewer_id: int | None, status: Status, page: Page
) -> list[tuple[int, int]]:
    """(favourite id, account id) of those who favourited ``status``, newest first."""
    hidden = await hidden_account_ids(session, viewer_id)
    query = select(Favourite.id, Favourite.account_id).where(Favourite.status_id == status.id)
    if hidden:
        query = query.where(Favourite.account_id.not_in(hidden))
    rows = page.finish(
        (await session.execute(page.apply(cast(Select[Any], query), Favourite.id))).all()
    )
    return [(row[0], row[1]) for row in rows]


async def rebloggers(
    session: AsyncSession, viewer_id: int | None, status: Status, page: Page
) -> list[tuple[int, int]]:
    """(reblog id, account id) of those who reblogged ``status`` where the viewer may see it."""
    hidden = await hidden_account_ids(session, viewer_id)
    query = select(Status.id, Status.account_id).where(
        Status.reblog_of_id == status.id, visible_to(viewer_id), not_hidden(hidden)
    )
    rows = page.finish(
        (await session.execute(page.apply(cast(Select[Any], query), Status.id))).all()
    )
    return [(row[0], row[1]) for row in rows]
