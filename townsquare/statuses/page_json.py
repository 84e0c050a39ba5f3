"""A page of statuses read as driver rows, answered as JSON bytes from the worker's templates.

The same bytes as ``orjson.dumps(render_statuses(...))`` (tests/timelines/test_page_json.py
holds them to that), at a fraction of the work once the page's statuses and authors have been
seen: the rows of the page, of reblogged statuses, of the authors and the reader's marks are
read on every page, in one statement (:func:`page_statement`, run as in
townsquare/statuses/page_reads.py); only what changed since it was rendered goes through the
ORM and the entity functions again.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson
from sqlalchemy import (
    BigInteger,
    BindParameter,
    ColumnElement,
    CompoundSelect,
    Select,
    bindparam,
    case,
    exists,
    false,
    select,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from townsquare.accounts.entities import ENTITY_COLUMNS, account_entities
from townsquare.accounts.models import Account
from townsquare.state import AppState
from townsquare.statuses.cache import entity_cache
from townsquare.statuses.entities import (
    make_templates,
    render_statuses,
    viewer_marks_statement,
)
from townsquare.statuses.models import Bookmark, Favourite, Pin, Status
from townsquare.statuses.page_reads import PageRead, Rows, in_ids
from townsquare.statuses.rendered import Template, fill, json_array

# A status row as the page reads it: the id, then every column its entity shows. The whole row
# is the version its template is kept with.
STATUS_COLUMNS: tuple[Any, ...] = (
    Status.id,
    Status.account_id,
    Status.reblog_of_id,
    Status.quote_of_id,
    Status.reblogs_count,
    Status.favourites_count,
    Status.in_reply_to_id,
    Status.in_reply_to_account_id,
    Status.content_html,
    Status.spoiler_text,
    Status.visibility,
    Status.sensitive,
    Status.language,
    Status.application_id,
    Status.created_at,
    Status.edited_at,
    Status.replies_count,
    Status.quotes_count,
)
ID, ACCOUNT_ID, REBLOG_OF_ID, QUOTE_OF_ID, REBLOGS_COUNT, FAVOURITES_COUNT = range(6)


def original_columns(original: Any) -> tuple[Any, ...]:
    """``STATUS_COLUMNS`` of ``original`` (the status a row reblogs, outer-joined under that
    alias), labelled ``original_*``. A page's rows select these after ``STATUS_COLUMNS``;
    :func:`page_statement` reads the rest of what the page shows on top of them."""
    return tuple(
        getattr(original, column.key).label(f"original_{column.key}") for column in STATUS_COLUMNS
    )


# A page row: the status, its original, both authors' account rows (ENTITY_COLUMNS), and the
# reader's marks on the status and on its original.
_WIDTH = len(STATUS_COLUMNS)
_ACCOUNT_WIDTH = len(ENTITY_COLUMNS)
_ORIGINAL_AT = _WIDTH
_AUTHOR_AT = 2 * _WIDTH
_ORIGINAL_AUTHOR_AT = _AUTHOR_AT + _ACCOUNT_WIDTH
_MARKS_AT = _ORIGINAL_AUTHOR_AT + _ACCOUNT_WIDTH

_READER: BindParameter[int] = bindparam("reader_id", type_=BigInteger)


def _marks_of(
    status_id: Any, account_id: Any, favourites_count: Any, reblogs_count: Any
) -> list[ColumnElement[Any]]:
    """Whether the reader favourited, reblogged, bookmarked and pinned a status; each looked up
    only where it can be (the counters read with the row), as ``viewer_marks_statement``, and
    not at all for the original of a status that reblogs none. As CASE, not AND: SQLite runs
    both sides of an AND in a result column (the reblogs lookup reads every status of the
    reader's, 3 ms a page)."""
    reblog = aliased(Status, name="reblog")
    lookups = [
        (
            favourites_count > 0,
            exists().where(Favourite.account_id == _READER, Favourite.status_id == status_id),
        ),
        (
            reblogs_count > 0,
            # Through the index on reblog_of_id: SQLite would read every status of the
            # reader's through (account_id, id) instead.
            exists().where(reblog.account_id + 0 == _READER, reblog.reblog_of_id == status_id),
        ),
        (
            status_id.is_not(None),
            exists().where(Bookmark.account_id == _READER, Bookmark.status_id == status_id),
        ),
        (
            account_id == _READER,
            exists().where(Pin.account_id == _READER, Pin.status_id == status_id),
        ),
    ]
    return [case((wanted, lookup), else_=false()) for wanted, lookup in lookups]


def page_statement(rows: Select[Any] | CompoundSelect[Any]) -> Select[Any]:
    """Everything a page shows of the statuses ``rows`` selects (``STATUS_COLUMNS`` then
    :func:`original_columns`, bounded by the page), in one statement: on PostgreSQL each statement
    is a round trip, and the authors and the reader's marks were two more per page. The
    lookups run on the page's rows only, after its LIMIT."""
    page = rows.subquery("page")
    columns = list(page.c)
    status, original = columns[:_WIDTH], columns[_WIDTH:]
    author = aliased(Account, name="author")
    original_author = aliased(Account, name="original_author")
    return (
        select(
            *columns,
            *(getattr(author, column.key) for column in ENTITY_COLUMNS),
            *(getattr(original_author, column.key) for column in ENTITY_COLUMNS),
            *_marks_of(
                status[ID], status[ACCOUNT_ID], status[FAVOURITES_COUNT], status[REBLOGS_COUNT]
            ),
            *_marks_of(
                original[ID],
                original[ACCOUNT_ID],
                original[FAVOURITES_COUNT],
                original[REBLOGS_COUNT],
            ),
        )
        .select_from(page)
        .join(author, author.id == status[ACCOUNT_ID])
        .outerjoin(original_author, original_author.id == original[ACCOUNT_ID])
    )


_STATUS_ROWS = select(*STATUS_COLUMNS).where(in_ids(Status.id, "ids"))
_ACCOUNT_ROWS = select(*ENTITY_COLUMNS).where(in_ids(Account.id, "ids"))


class _Marks:
    __slots__ = ("bookmarked", "favourited", "pinned", "reblogged")

    def __init__(self) -> None:
        self.favourited: set[int] = set()
        self.reblogged: set[int] = set()
        self.bookmarked: set[int] = set()
        self.pinned: set[int] = set()


@dataclass(slots=True)
class PageParts:
    """What a page shows: its status rows (``STATUS_COLUMNS``) in order, the rows of the
    statuses they reblog, the authors' account rows (``ENTITY_COLUMNS``) and the reader's
    marks."""

    statuses: list[Sequence[Any]]
    originals: dict[int, Sequence[Any]] = field(default_factory=dict)
    accounts: dict[int, Sequence[Any]] = field(default_factory=dict)
    marks: _Marks = field(default_factory=_Marks)


def parts_of_rows(page: Sequence[Sequence[Any]]) -> PageParts:
    """The parts of a page read as rows of :func:`page_statement`."""
    parts = PageParts([])
    marks = parts.marks
    sets = (marks.favourited, marks.reblogged, marks.bookmarked, marks.pinned)
    for row in page:
        status = row[:_WIDTH]
        parts.statuses.append(status)
        parts.accounts[status[ACCOUNT_ID]] = row[_AUTHOR_AT:_ORIGINAL_AUTHOR_AT]
        for marked, mark in zip(sets, row[_MARKS_AT : _MARKS_AT + 4], strict=True):
            if mark:
                marked.add(status[ID])
        if status[REBLOG_OF_ID] is None:
            continue
        original = row[_ORIGINAL_AT:_AUTHOR_AT]
        parts.originals[original[ID]] = original
        if row[_ORIGINAL_AUTHOR_AT] is not None:
            parts.accounts[original[ACCOUNT_ID]] = row[_ORIGINAL_AUTHOR_AT:_MARKS_AT]
        for marked, mark in zip(sets, row[_MARKS_AT + 4 :], strict=True):
            if mark:
                marked.add(original[ID])
    return parts


async def parts_read_apart(rows: Rows, viewer_id: int, page: Sequence[Sequence[Any]]) -> PageParts:
    """The parts of a page whose status rows are ``page``, read with a statement each for the
    reblogged originals, the authors and the reader's marks. Where a statement is no round
    trip (SQLite), that costs less than the rows of :func:`page_statement`, which repeat an
    author's row for each of their statuses."""
    if not page:
        return PageParts([])
    shown: dict[int, Sequence[Any]] = {row[ID]: row for row in page}
    wanted = {row[REBLOG_OF_ID] for row in page if row[REBLOG_OF_ID] is not None}
    if wanted - shown.keys():
        for row in await rows(_STATUS_ROWS, {"ids": sorted(wanted - shown.keys())}):
            shown[row[ID]] = row
    authors = sorted({row[ACCOUNT_ID] for row in shown.values()})
    return PageParts(
        list(page),
        {status_id: shown[status_id] for status_id in wanted if status_id in shown},
        {row[0]: row for row in await rows(_ACCOUNT_ROWS, {"ids": authors})},
        await _marks(rows, viewer_id, list(shown.values())),
    )


async def _marks(rows: Rows, viewer_id: int, statuses: list[Sequence[Any]]) -> _Marks:
    """The reader's favourites, bookmarks, reblogs and pins among ``statuses``, in one statement
    that asks only where each can be (see ``viewer_marks_statement``)."""
    marks = _Marks()
    wanted = {
        "ids_f": sorted({s[ID] for s in statuses if s[FAVOURITES_COUNT]}),
        "ids_b": sorted({s[ID] for s in statuses}),
        "ids_r": sorted({s[ID] for s in statuses if s[REBLOGS_COUNT]}),
        "ids_p": sorted({s[ID] for s in statuses if s[ACCOUNT_ID] == viewer_id}),
    }
    kinds = tuple(name[-1] for name, values in wanted.items() if values)
    if not kinds:
        return marks
    sets = {"f": marks.favourited, "b": marks.bookmarked, "r": marks.reblogged, "p": marks.pinned}
    for kind, status_id in await rows(
        viewer_marks_statement(kinds), {"viewer_id": viewer_id, **wanted}
    ):
        if status_id is not None:
            sets[kind].add(status_id)
    return marks


_ORM_STATUSES = select(Status).where(
    Status.id.in_(bindparam("ids", type_=BigInteger, expanding=True))
)


async def render_rows_json(
    read: PageRead, state: AppState, viewer_id: int, parts: PageParts
) -> bytes:
    """The JSON array of the statuses of a page, in order."""
    page = parts.statuses
    if not page:
        return b"[]"
    cache = entity_cache(state)
    shown: dict[int, Sequence[Any]] = {row[ID]: row for row in page}
    shown.update(parts.originals)

    templates: dict[int, Template] = {}
    missed: dict[int, tuple[Any, ...]] = {}
    for row in page:
        original = None if row[REBLOG_OF_ID] is None else shown.get(row[REBLOG_OF_ID])
        version = (tuple(row), None if original is None else tuple(original))
        template = cache.templates.get(row[ID], version)
        if template is None:
            missed[row[ID]] = version
        else:
            templates[row[ID]] = template
    if missed:
        made = await _templates(read.session(), state, shown, list(missed))
        for status_id, version in missed.items():
            template = made.get(status_id)
            if template is not None:
                templates[status_id] = template
                cache.templates.put(status_id, version, template)

    accounts = await _account_json(read, state, parts.accounts)
    whole = await _per_reader(
        read, state, viewer_id, [i for i, t in templates.items() if not t.whole]
    )

    items: list[bytes] = []
    for row in page:
        template = templates.get(row[ID])
        if template is None:
            continue
        if not template.whole:
            if row[ID] in whole:
                items.append(whole[row[ID]])
            continue
        if not accounts.keys() >= set(template.accounts):
            continue
        out: list[bytes] = []
        fill(template, parts.marks, accounts, out)
        items.append(b"".join(out))
    return json_array(items)


async def _orm_statuses(session: AsyncSession, ids: Sequence[int]) -> dict[int, Status]:
    found = await session.scalars(_ORM_STATUSES, {"ids": list(ids)})
    return {status.id: status for status in found}


async def _templates(
    session: AsyncSession, state: AppState, shown: dict[int, Sequence[Any]], missed: list[int]
) -> dict[int, Template]:
    """Templates for the statuses not rendered yet (or changed since), through the ORM."""
    wanted = set(missed)
    wanted.update(shown[i][REBLOG_OF_ID] for i in missed if shown[i][REBLOG_OF_ID] is not None)
    related = await _orm_statuses(session, sorted(wanted))
    statuses = [related[i] for i in missed if i in related]
    return await make_templates(session, state, related, statuses)


async def _account_json(
    read: PageRead, state: AppState, rows: dict[int, Sequence[Any]]
) -> dict[int, bytes]:
    """Each author's entity as JSON, kept with the account row it was made from."""
    cache = entity_cache(state).account_json
    result: dict[int, bytes] = {}
    versions: dict[int, tuple[Any, ...]] = {}
    for account_id, row in rows.items():
        version = tuple(row)
        data = cache.get(account_id, version)
        if data is None:
            versions[account_id] = version
        else:
            result[account_id] = data
    if versions:
        settings = state.settings
        entities = await account_entities(
            read.session(), settings, entity_cache(state).accounts, versions.keys()
        )
        for account_id, entity in entities.items():
            data = orjson.dumps(entity, option=orjson.OPT_NON_STR_KEYS)
            cache.put(account_id, versions[account_id], data)
            result[account_id] = data
    return result


async def _per_reader(
    read: PageRead, state: AppState, viewer_id: int, ids: list[int]
) -> dict[int, bytes]:
    """Statuses with a poll or a quote, rendered whole for this reader."""
    if not ids:
        return {}
    session = read.session()
    statuses = await _orm_statuses(session, ids)
    rendered = await render_statuses(
        session, state, viewer_id, [statuses[i] for i in ids if i in statuses]
    )
    return {
        int(entity["id"]): orjson.dumps(entity, option=orjson.OPT_NON_STR_KEYS)
        for entity in rendered
    }
