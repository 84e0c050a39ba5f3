"""The home timeline: the materialised feed, merged at read time with authors too big to fan out
and, past the feed's retention, with everyone followed.

Rows in ``home_feed`` were written when the reader could see them; follows and blocks may have
changed since, so every read checks again that the author is the reader or someone they follow,
and that nobody involved is hidden from them.
"""

from __future__ import annotations

from sqlalchemy import literal, or_, select, union_all
from sqlalchemy.ext.asyncio import AsyncSession

from townsquare.accounts.models import Account
from townsquare.api.pagination import Page
from townsquare.graph.models import Follow
from townsquare.privacy import hidden_accounts_query, not_hidden
from townsquare.statuses.models import Status
from townsquare.timelines.filters import (
    follows_author,
    has_tag_followed_by,
    in_exclusive_list_of,
    reply_shown_in_home,
    with_viewable_reblogs,
)
from townsquare.timelines.models import HomeFeedEntry
from townsquare.timelines.recipients import HOME_VISIBILITIES
from townsquare.timelines.retention import feed_boundary


async def home_timeline(
    session: AsyncSession, reader_id: int, page: Page, *, pull_threshold: int
) -> list[Status]:
    hidden, pulled = await _reader_context(session, reader_id, pull_threshold)
    boundary = feed_boundary()
    feed_query = (
        select(Status)
        .join(HomeFeedEntry, HomeFeedEntry.status_id == Status.id)
        .where(
            HomeFeedEntry.account_id == reader_id,
            HomeFeedEntry.status_id >= boundary,
            or_(
                Status.account_id == reader_id,
                follows_author(reader_id),
                has_tag_followed_by(reader_id),
            ),
            ~in_exclusive_list_of(reader_id),
            not_hidden(hidden),
        )
    )
    feed_query = with_viewable_reblogs(feed_query, hidden)
    statuses = list((await session.scalars(page.apply(feed_query, HomeFeedEntry.status_id))).all())

    if pulled:
        statuses += await _pulled_statuses(
            session, reader_id, page, pulled, hidden, beyond=_page_edge(statuses, page)
        )

    if _reaches_before(page, boundary) and (page.ascending or len(statuses) < page.limit):
        # Older than the materialised feed: read everyone followed, as for big authors.
        everyone = await _followed_authors(session, reader_id)
        everyone[reader_id] = True
        statuses += await _pulled_statuses(
            session, reader_id, page, everyone, hidden, before=boundary
        )
    return _merge(statuses, page)


async def _reader_context(
    session: AsyncSession, reader_id: int, pull_threshold: int
) -> tuple[set[int], dict[int, bool]]:
    """The accounts hidden from the reader, and the big authors they follow (with whether they
    want their reblogs), in one statement: both are read on every page."""
    hidden_query = hidden_accounts_query(reader_id).subquery()
    rows = await session.execute(
        union_all(
            select(literal("h"), hidden_query.c[0], literal(False)),
            select(literal("b"), Follow.target_account_id, Follow.show_reblogs)
            .join(Account, Account.id == Follow.target_account_id)
            .where(Follow.account_id == reader_id, Account.followers_count >= pull_threshold),
        )
    )
    hidden: set[int] = set()
    big_authors: dict[int, bool] = {}
    for kind, account_id, show_reblogs in rows:
        if kind == "h":
            hidden.add(account_id)
        else:
            big_authors[account_id] = bool(show_reblogs)
    hidden.discard(reader_id)
    return hidden, big_authors


def _page_edge(statuses: list[Status], page: Page) -> int | None:
    """The id past which nothing can make this page, once the feed alone filled it: the oldest
    of a newest-first page (the newest of an oldest-first one)."""
    if len(statuses) < page.limit:
        return None
    ids = [status.id for status in statuses]
    return max(ids) if page.ascending else min(ids)


def _reaches_before(page: Page, boundary: int) -> bool:
    lower = max(page.since_id or 0, page.min_id or 0)
    return lower < boundary - 1


async def _followed_authors(session: AsyncSession, reader_id: int) -> dict[int, bool]:
    """Followed authors, with whether the reader wants their reblogs."""
    query = select(Follow.target_account_id, Follow.show_reblogs).where(
        Follow.account_id == reader_id
    )
    rows = await session.execute(query)
    return {row.target_account_id: row.show_reblogs for row in rows}


async def _pulled_statuses(
    session: AsyncSession,
    reader_id: int,
    page: Page,
    authors: dict[int, bool],
    hidden: set[int],
    *,
    before: int | None = None,
    beyond: int | None = None,
) -> list[Status]:
    with_reblogs = [author for author, wanted in authors.items() if wanted]
    query = select(Status).where(
        Status.account_id.in_(list(authors)),
        Status.visibility.in_(HOME_VISIBILITIES),
        or_(Status.reblog_of_id.is_(None), Status.account_id.in_(with_reblogs)),
        or_(Status.account_id == reader_id, reply_shown_in_home(reader_id)),
        ~in_exclusive_list_of(reader_id),
        not_hidden(hidden),
    )
    if before is not None:
        query = query.where(Status.id < before)
    if beyond is not None:
        # Only statuses that could displace one of the feed's: a big author's whole history is
        # otherwise read and sorted on every page (hundreds of rows for a few authors).
        query = query.where(Status.id < beyond if page.ascending else Status.id > beyond)
    query = page.apply(with_viewable_reblogs(query, hidden), Status.id)
    if before is None:
        # Big authors only: ordered by ``id + 0``, not ``id``. With a LIMIT, ordering by the
        # primary key lets PostgreSQL walk the statuses backwards hoping to meet these few
        # authors soon (30-50 ms per page on a million statuses); an expression makes it read
        # their statuses through (account_id, id) and sort those instead (about 5 ms).
        order = Status.id + 0
        query = query.order_by(None).order_by(order.asc() if page.ascending else order.desc())
    return list((await session.scalars(query)).all())


def _merge(statuses: list[Status], page: Page) -> list[Status]:
    """One page, newest first, from several sources each already bounded by ``page``."""
    unique = {status.id: status for status in statuses}
    ordered = sorted(unique.values(), key=lambda status: status.id, reverse=not page.ascending)
    chosen = ordered[: page.limit]
    if page.ascending:
        chosen.reverse()
    return chosen
