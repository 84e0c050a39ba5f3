"""The home timeline: the materialised feed, merged at read time with authors too big to fan out
and, past the feed's retention, with everyone followed.

Rows in ``home_feed`` were written when the reader could see them; follows and blocks may have
changed since, so every read checks again that the author is the reader or someone they follow,
and that nobody involved is hidden from them.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from functools import cache
from typing import Any

from sqlalchemy import (
    BigInteger,
    BindParameter,
    ColumnElement,
    CompoundSelect,
    Integer,
    Select,
    and_,
    bindparam,
    case,
    func,
    literal,
    or_,
    select,
    union_all,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from townsquare.accounts.models import Account
from townsquare.api.pagination import Page
from townsquare.db.base import utcnow
from townsquare.graph.models import Follow, Mute
from townsquare.privacy import OPEN_VISIBILITIES, hidden_accounts_query
from townsquare.statuses.models import Status
from townsquare.statuses.page_json import (
    ID,
    STATUS_COLUMNS,
    PageParts,
    original_columns,
    page_statement,
    parts_of_rows,
    parts_read_apart,
)
from townsquare.statuses.page_reads import Rows, in_ids
from townsquare.timelines.filters import (
    Original,
    follows_author,
    has_tag_followed_by,
    in_exclusive_list_of,
    reply_shown_in_home,
)
from townsquare.timelines.models import HomeFeedEntry
from townsquare.timelines.recipients import HOME_VISIBILITIES
from townsquare.timelines.retention import feed_boundary

# The statements of a page are built once per shape (which paging bounds are given) and reused
# with bound parameters: building them, and SQLAlchemy's cache key for them, cost more CPU than
# SQLite takes to run them (about 1 ms a page).
_READER: BindParameter[int] = bindparam("reader_id", type_=BigInteger)
_LIMIT: BindParameter[int] = bindparam("limit", type_=Integer)
# A page's bounds: (max_id, since_id, min_id) given or not, and whether it reads oldest first.
_Shape = tuple[bool, bool, bool, bool]


def _shape(page: Page) -> _Shape:
    return (
        page.max_id is not None,
        page.since_id is not None,
        page.min_id is not None,
        page.ascending,
    )


def _page_values(page: Page) -> dict[str, Any]:
    return {
        "max_id": page.max_id,
        "since_id": page.since_id,
        "min_id": page.min_id,
        "limit": page.limit,
    }


def _bounded(
    query: Select[Any], column: InstrumentedAttribute[int], shape: _Shape, *, order: Any = None
) -> Select[Any]:
    """:meth:`Page.apply` with bound parameters instead of the page's values."""
    has_max, has_since, has_min, ascending = shape
    if has_max:
        query = query.where(column < bindparam("max_id", type_=BigInteger))
    if has_since:
        query = query.where(column > bindparam("since_id", type_=BigInteger))
    if has_min:
        query = query.where(column > bindparam("min_id", type_=BigInteger))
    key = column if order is None else order
    return query.order_by(key.asc() if ascending else key.desc()).limit(_LIMIT)


# How a statement leaves out the statuses of accounts hidden from the reader: given as one
# ``hidden`` parameter (read beforehand), or read in the statement itself (``_not_hidden``).
_Hiding = Callable[[Any], ColumnElement[bool]]


def _not_in_hidden_parameter(column: Any) -> ColumnElement[bool]:
    return ~in_ids(column, "hidden")


@cache
def _feed_statement(shape: _Shape, not_hidden: _Hiding = _not_in_hidden_parameter) -> Select[Any]:
    query = (
        select(Status)
        .join(HomeFeedEntry, HomeFeedEntry.status_id == Status.id)
        .where(
            HomeFeedEntry.account_id == _READER,
            HomeFeedEntry.status_id >= bindparam("boundary", type_=BigInteger),
            or_(
                Status.account_id == _READER,
                follows_author(_READER),
                has_tag_followed_by(_READER),
            ),
            ~in_exclusive_list_of(_READER),
            not_hidden(Status.account_id),
        )
    )
    return _bounded(_with_viewable_reblogs(query, not_hidden), HomeFeedEntry.status_id, shape)


# A page's rows select the original of a reblog too (already joined to check it may be seen):
# see ``page_statement``.
_PAGE_COLUMNS = (*STATUS_COLUMNS, *original_columns(Original))


def _with_viewable_reblogs(
    query: Select[Any], not_hidden: _Hiding = _not_in_hidden_parameter
) -> Select[Any]:
    """``with_viewable_reblogs`` with the hidden accounts left out by ``not_hidden``."""
    return query.outerjoin(Original, Original.id == Status.reblog_of_id).where(
        or_(
            Status.reblog_of_id.is_(None),
            and_(Original.visibility.in_(OPEN_VISIBILITIES), not_hidden(Original.account_id)),
        )
    )


async def home_timeline(
    session: AsyncSession, reader_id: int, page: Page, *, pull_threshold: int
) -> list[Status]:
    hidden, pulled = await _reader_context(session, reader_id, pull_threshold)
    boundary = feed_boundary()
    values = {
        "reader_id": reader_id,
        "boundary": boundary,
        "hidden": sorted(hidden),
        **_page_values(page),
    }
    statuses = list((await session.scalars(_feed_statement(_shape(page)), values)).all())

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


async def home_page_parts(
    rows: Rows, reader_id: int, page: Page, *, big_authors: Sequence[int]
) -> PageParts:
    """:func:`home_timeline` as driver rows (``PageParts``, townsquare/statuses/page_json.py):
    the same conditions, run underneath the ORM. On PostgreSQL in one
    statement (:func:`_page_rows_statement`) unless the page reaches past the feed's
    retention; on SQLite in narrower statements, one for each part (see ``Rows``).
    ``big_authors`` are the accounts at or above the pull threshold (:class:`BigAuthors`)."""
    boundary = feed_boundary()
    values = {
        "reader_id": reader_id,
        "now": utcnow(),
        "big": big_authors,
        "boundary": boundary,
        **_page_values(page),
    }
    shape = _shape(page)
    if not rows.round_trips:
        return await parts_read_apart(rows, reader_id, await _narrow_page_rows(rows, values, page))
    found = list(await rows(_page_rows_statement(shape), values))
    if _reaches_before(page, boundary) and (page.ascending or len(found) < page.limit):
        # Older than the materialised feed: read everyone followed, as for big authors.
        everyone = {target: bool(wanted) for target, wanted in await rows(_FOLLOWED, values)}
        everyone[reader_id] = True
        values["authors"] = sorted(everyone)
        values["with_reblogs"] = sorted(author for author, wanted in everyone.items() if wanted)
        values["before"] = boundary
        found += await rows(_before_feed_rows_statement(shape), values)
    return parts_of_rows(_chosen(found, page))


async def _narrow_page_rows(rows: Rows, values: dict[str, Any], page: Page) -> list[Sequence[Any]]:
    """The page as rows of ``STATUS_COLUMNS``, a statement for each part (see ``Rows``): the
    reader's context, the feed, the big authors followed past the feed's last row, and
    everyone followed past the feed's retention."""
    reader_id = values["reader_id"]
    context = await rows(_READER_CONTEXT_ROWS, values)
    hidden = sorted({account_id for kind, account_id, _ in context if kind == "h"} - {reader_id})
    pulled = {account_id: bool(wanted) for kind, account_id, wanted in context if kind == "b"}
    values = {**values, "hidden": hidden}
    shape = _shape(page)
    feed = list(await rows(_narrow_statement(_feed_statement(shape)), values))
    found = list(feed)
    if pulled:
        edge = None
        if len(feed) >= page.limit:
            ids = [row[ID] for row in feed]
            edge = max(ids) if page.ascending else min(ids)
        values["authors"] = sorted(pulled)
        values["with_reblogs"] = sorted(author for author, wanted in pulled.items() if wanted)
        values["beyond"] = edge
        statement = _pulled_statement(shape, False, edge is not None)
        found += await rows(_narrow_statement(statement), values)
    if _reaches_before(page, values["boundary"]) and (page.ascending or len(found) < page.limit):
        everyone = {target: bool(wanted) for target, wanted in await rows(_FOLLOWED, values)}
        everyone[reader_id] = True
        values["authors"] = sorted(everyone)
        values["with_reblogs"] = sorted(author for author, wanted in everyone.items() if wanted)
        values["before"] = values["boundary"]
        found += await rows(_narrow_statement(_pulled_statement(shape, True, False)), values)
    return _chosen(found, page)


@cache
def _narrow_statement(statement: Select[Any]) -> Select[Any]:
    narrow: Select[Any] = statement.with_only_columns(*STATUS_COLUMNS)
    return narrow


def _chosen(found: list[Sequence[Any]], page: Page) -> list[Sequence[Any]]:
    unique = {row[ID]: row for row in found}
    ordered = sorted(unique.values(), key=lambda row: row[ID], reverse=not page.ascending)
    chosen = ordered[: page.limit]
    if page.ascending:
        chosen.reverse()
    return chosen


_hidden_from_reader = hidden_accounts_query(
    _READER, bindparam("now", type_=Mute.expires_at.type)
).subquery()
_READER_CONTEXT: CompoundSelect[Any] = union_all(
    select(literal("h"), _hidden_from_reader.c[0], literal(False)),
    select(literal("b"), Follow.target_account_id, Follow.show_reblogs)
    .join(Account, Account.id == Follow.target_account_id)
    .where(
        Follow.account_id == _READER,
        Account.followers_count >= bindparam("pull_threshold", type_=Integer),
    ),
)


# The reader's context, read first where statements are no round trips (see ``Rows``): the
# big authors the reader follows are found among the instance's big authors (a handful, kept
# by each worker) through the follows index.
_READER_CONTEXT_ROWS: CompoundSelect[Any] = union_all(
    select(literal("h"), _hidden_from_reader.c[0], literal(False)),
    select(literal("b"), Follow.target_account_id, Follow.show_reblogs).where(
        Follow.account_id == _READER, in_ids(Follow.target_account_id, "big")
    ),
)


# The accounts hidden from the reader, read in a page's statement itself: on PostgreSQL the
# reader's context was a round trip of its own before the feed's. The reader's own statuses
# are never hidden from them.
_HIDDEN = hidden_accounts_query(_READER, bindparam("now", type_=Mute.expires_at.type)).cte("hidden")


def _not_hidden(column: Any) -> ColumnElement[bool]:
    condition: ColumnElement[bool] = column.not_in(
        select(_HIDDEN.c[0]).where(_HIDDEN.c[0] != _READER)
    )
    return condition


# The big authors the reader follows, found among the instance's big authors (a handful, kept
# by each worker: ``big``) through the follows index, with whether the reader wants their
# reblogs.
_PULLED_AUTHORS = (
    select(Follow.target_account_id, Follow.show_reblogs)
    .where(Follow.account_id == _READER, in_ids(Follow.target_account_id, "big"))
    .cte("pulled_authors")
)


@cache
def _page_rows_statement(shape: _Shape) -> Select[Any]:
    """A page in one statement: the feed's rows, and the statuses of the big authors the
    reader follows that could be on the page: those past the feed's last row when the feed
    alone fills the page (a big author's whole history is otherwise read and sorted on every
    page), all of them bounded by the page otherwise. Up to twice the page's limit; the caller
    merges them."""
    feed = _feed_statement(shape, _not_hidden).with_only_columns(*_PAGE_COLUMNS).cte("feed")
    ascending = shape[3]
    full = func.count() >= _LIMIT
    if ascending:
        edge = select(case((full, func.max(feed.c.id)))).scalar_subquery()
        beyond = Status.id < func.coalesce(edge, _NO_ID_ABOVE)
    else:
        edge = select(case((full, func.min(feed.c.id)))).scalar_subquery()
        beyond = Status.id > func.coalesce(edge, 0)
    authors = select(_PULLED_AUTHORS.c.target_account_id)
    pulled = _pulled_query(
        shape,
        Status.account_id.in_(authors),
        Status.account_id.in_(authors.where(_PULLED_AUTHORS.c.show_reblogs.is_(True))),
        _not_hidden,
    ).where(beyond)
    pulled_rows = pulled.with_only_columns(*_PAGE_COLUMNS).subquery("pulled")
    return page_statement(union_all(select(*feed.c), select(*pulled_rows.c)))


@cache
def _before_feed_rows_statement(shape: _Shape) -> Select[Any]:
    """Statuses of everyone followed (``authors``) older than the feed's retention."""
    query = _pulled_query(
        shape,
        in_ids(Status.account_id, "authors"),
        in_ids(Status.account_id, "with_reblogs"),
        _not_hidden,
        before=True,
    )
    return page_statement(query.with_only_columns(*_PAGE_COLUMNS))


# Larger than any id: the bound of an oldest-first page's pulled statuses when there is none.
_NO_ID_ABOVE = 2**63 - 1

# How long a worker uses the accounts at or above the pull threshold before reading them again.
BIG_AUTHORS_SECONDS = 5.0
_BIG_AUTHORS_KEY = "big_authors"


class BigAuthors:
    """The instance's accounts with at least ``pull_threshold`` followers, read by one worker
    at most every ``BIG_AUTHORS_SECONDS`` (and again when ``Database.auth_generation`` moves;
    follower counts alone do not move it). Whom the reader follows is read with every page;
    only who counts as big may lag, by that bound: an author who has just become big may show
    in their followers' home timelines that much late."""

    _STATEMENT = select(Account.id).where(
        Account.followers_count >= bindparam("pull_threshold", type_=Integer)
    )

    def __init__(self) -> None:
        self.clock: Callable[[], float] = time.monotonic
        self._ids: list[int] = []
        self._generation = -1
        self._read_at = float("-inf")

    async def ids(self, rows: Rows, generation: int, pull_threshold: int) -> list[int]:
        now = self.clock()
        if generation != self._generation or now - self._read_at >= BIG_AUTHORS_SECONDS:
            found = await rows(self._STATEMENT, {"pull_threshold": pull_threshold})
            self._ids = sorted(row[0] for row in found)
            self._generation = generation
            self._read_at = now
        return self._ids


def big_authors(extras: dict[str, Any]) -> BigAuthors:
    """The worker's :class:`BigAuthors`, made on first use."""
    found = extras.get(_BIG_AUTHORS_KEY)
    if found is None:
        found = extras[_BIG_AUTHORS_KEY] = BigAuthors()
    assert isinstance(found, BigAuthors)
    return found


async def _reader_context(
    session: AsyncSession, reader_id: int, pull_threshold: int
) -> tuple[set[int], dict[int, bool]]:
    """The accounts hidden from the reader, and the big authors they follow (with whether they
    want their reblogs), in one statement: both are read on every page."""
    rows = await session.execute(
        _READER_CONTEXT,
        {"reader_id": reader_id, "now": utcnow(), "pull_threshold": pull_threshold},
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


def _pulled_query(
    shape: _Shape,
    authors: ColumnElement[bool],
    with_reblogs: ColumnElement[bool],
    not_hidden: _Hiding,
    *,
    before: bool = False,
) -> Select[Any]:
    """Statuses of ``authors`` (reblogs only by ``with_reblogs``) the reader may see in their
    home timeline, bounded by the page (and by ``before`` when given)."""
    query = select(Status).where(
        authors,
        Status.visibility.in_(HOME_VISIBILITIES),
        or_(Status.reblog_of_id.is_(None), with_reblogs),
        or_(Status.account_id == _READER, reply_shown_in_home(_READER)),
        ~in_exclusive_list_of(_READER),
        not_hidden(Status.account_id),
    )
    if before:
        query = query.where(Status.id < bindparam("before", type_=BigInteger))
    query = _with_viewable_reblogs(query, not_hidden)
    if before:
        return _bounded(query, Status.id, shape)
    # Big authors only: ordered by ``id + 0``, not ``id``. With a LIMIT, ordering by the
    # primary key lets PostgreSQL walk the statuses backwards hoping to meet these few
    # authors soon (30-50 ms per page on a million statuses); an expression makes it read
    # their statuses through (account_id, id) and sort those instead (about 5 ms).
    return _bounded(query, Status.id, shape, order=Status.id + 0)


@cache
def _pulled_statement(shape: _Shape, before: bool, beyond: bool) -> Select[Any]:
    query = _pulled_query(
        shape,
        in_ids(Status.account_id, "authors"),
        in_ids(Status.account_id, "with_reblogs"),
        _not_in_hidden_parameter,
        before=before,
    )
    if beyond:
        # Only statuses that could displace one of the feed's: a big author's whole history is
        # otherwise read and sorted on every page (hundreds of rows for a few authors).
        edge = bindparam("beyond", type_=BigInteger)
        query = query.where(Status.id < edge if shape[3] else Status.id > edge)
    return query


_FOLLOWED = select(Follow.target_account_id, Follow.show_reblogs).where(
    Follow.account_id == _READER
)


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
    statement = _pulled_statement(_shape(page), before is not None, beyond is not None)
    values = {
        "reader_id": reader_id,
        "authors": sorted(authors),
        "with_reblogs": sorted(author for author, wanted in authors.items() if wanted),
        "hidden": sorted(hidden),
        "before": before,
        "beyond": beyond,
        **_page_values(page),
    }
    return list((await session.scalars(statement, values)).all())


def _merge(statuses: list[Status], page: Page) -> list[Status]:
    """One page, newest first, from several sources each already bounded by ``page``."""
    unique = {status.id: status for status in statuses}
    ordered = sorted(unique.values(), key=lambda status: status.id, reverse=not page.ascending)
    chosen = ordered[: page.limit]
    if page.ascending:
        chosen.reverse()
    return chosen
