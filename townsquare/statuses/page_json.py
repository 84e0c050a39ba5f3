"""A page of statuses read as driver rows, answered as JSON bytes from the worker's templates.

The same bytes as ``orjson.dumps(render_statuses(...))`` (tests/timelines/test_page_json.py
holds them to that), at a fraction of the work once the page's statuses and authors have been
seen: the rows of the page, of reblogged statuses, of the authors and the reader's marks are
read on every page (see townsquare/statuses/page_reads.py); only what changed since it was
rendered goes through the ORM and the entity functions again.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson
from sqlalchemy import BigInteger, bindparam, select
from sqlalchemy.ext.asyncio import AsyncSession

from townsquare.accounts.entities import ENTITY_COLUMNS, account_entities
from townsquare.accounts.models import Account
from townsquare.state import AppState
from townsquare.statuses.cache import entity_cache
from townsquare.statuses.entities import (
    make_templates,
    render_statuses,
    viewer_marks_statement,
)
from townsquare.statuses.models import Status
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

_STATUS_ROWS = select(*STATUS_COLUMNS).where(in_ids(Status.id, "ids"))
_ACCOUNT_ROWS = select(*ENTITY_COLUMNS).where(in_ids(Account.id, "ids"))
_ORM_STATUSES = select(Status).where(
    Status.id.in_(bindparam("ids", type_=BigInteger, expanding=True))
)


class _Marks:
    __slots__ = ("bookmarked", "favourited", "pinned", "reblogged")

    def __init__(self) -> None:
        self.favourited: set[int] = set()
        self.reblogged: set[int] = set()
        self.bookmarked: set[int] = set()
        self.pinned: set[int] = set()


async def render_rows_json(
    read: PageRead,
    state: AppState,
    viewer_id: int,
    page: Sequence[Sequence[Any]],
) -> bytes:
    """The JSON array of the statuses of ``page`` (rows of :data:`STATUS_COLUMNS`), in order."""
    if not page:
        return b"[]"
    rows = read.rows
    cache = entity_cache(state)
    shown: dict[int, Sequence[Any]] = {row[ID]: row for row in page}
    originals = {row[REBLOG_OF_ID] for row in page if row[REBLOG_OF_ID] is not None}
    if originals - shown.keys():
        for row in await rows(_STATUS_ROWS, {"ids": sorted(originals - shown.keys())}):
            shown[row[ID]] = row

    templates: dict[int, Template] = {}
    missed: dict[int, tuple[Any, ...]] = {}
    for row in page:
        original = shown.get(row[REBLOG_OF_ID]) if row[REBLOG_OF_ID] is not None else None
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

    accounts = await _account_json(read, state, {row[ACCOUNT_ID] for row in shown.values()})
    marks = await _marks(
        rows, viewer_id, [shown[i] for t in templates.values() for i in t.marked if i in shown]
    )
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
        fill(template, marks, accounts, out)
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


async def _account_json(read: PageRead, state: AppState, ids: set[int]) -> dict[int, bytes]:
    """Each author's entity as JSON, kept with the account row it was made from."""
    cache = entity_cache(state).account_json
    result: dict[int, bytes] = {}
    versions: dict[int, tuple[Any, ...]] = {}
    for row in await read.rows(_ACCOUNT_ROWS, {"ids": sorted(ids)}):
        version = tuple(row)
        data = cache.get(row[0], version)
        if data is None:
            versions[row[0]] = version
        else:
            result[row[0]] = data
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
