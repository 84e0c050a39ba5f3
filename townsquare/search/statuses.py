"""Full-text search over statuses, limited to what the viewer may see.

SQLite uses the FTS5 table ``statuses_fts`` and PostgreSQL a GIN index over ``to_tsvector``
(both created by migration 0002). User input never reaches either as query syntax: on SQLite
every word becomes a quoted FTS5 string, on PostgreSQL it goes through ``plainto_tsquery``.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, exists, or_, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from townsquare.accounts.models import Account
from townsquare.ids import id_at
from townsquare.media.models import MediaAttachment
from townsquare.privacy import hidden_account_ids, not_hidden, visible_to
from townsquare.search.operators import ParsedQuery
from townsquare.statuses.models import Poll, Status


@dataclass(frozen=True)
class StatusQuery:
    parsed: ParsedQuery
    viewer_id: int
    limit: int
    offset: int = 0
    account_id: int | None = None
    max_id: int | None = None
    min_id: int | None = None
    local_domain: str = ""


def fts5_query(words: list[str]) -> str:
    """Each word as an FTS5 string (``"..."`` with quotes doubled): all must match, no operators."""
    return " ".join('"' + word.replace('"', '""') + '"' for word in words)


def _matches(dialect: str, words: list[str]) -> ColumnElement[bool]:
    if dialect == "sqlite":
        matching = text(
            "SELECT rowid FROM statuses_fts WHERE statuses_fts MATCH :fts_query"
        ).bindparams(fts_query=fts5_query(words))
        return Status.id.in_(matching.columns(Status.id))
    return and_(
        text(
            "to_tsvector('simple', statuses.text || ' ' || statuses.spoiler_text) "
            "@@ plainto_tsquery('simple', :ts_query)"
        ).bindparams(ts_query=" ".join(words))
    )


def _searchable_author(viewer_id: int) -> ColumnElement[bool]:
    """Authors who opted out of search (``indexable`` false) are found only by themselves."""
    indexable = select(Account.id).where(Account.indexable.is_(True))
    return or_(Status.account_id == viewer_id, Status.account_id.in_(indexable))


def _id_at(moment: dt.datetime) -> int:
    return id_at(int(moment.timestamp() * 1000))


async def _with_operators(
    session: AsyncSession, statement: Select[Any], query: StatusQuery
) -> Select[Any] | None:
    """Narrow ``statement`` by the query's operators; None when they cannot match anything."""
    parsed = query.parsed
    if parsed.from_me:
        statement = statement.where(Status.account_id == query.viewer_id)
    if parsed.from_username is not None:
        username, _, domain = parsed.from_username.partition("@")
        if domain and domain != query.local_domain.lower():
            return None
        author = await session.scalar(select(Account.id).where(Account.username_key == username))
        if author is None:
            return None
        statement = statement.where(Status.account_id == author)
    if parsed.has_media:
        statement = statement.where(exists().where(MediaAttachment.status_id == Status.id))
    if parsed.has_poll:
        statement = statement.where(exists().where(Poll.status_id == Status.id))
    if parsed.is_reply is not None:
        replies = Status.in_reply_to_id.is_not(None)
        statement = statement.where(replies if parsed.is_reply else ~replies)
    if parsed.is_sensitive:
        statement = statement.where(Status.sensitive.is_(True))
    if parsed.before is not None:
        statement = statement.where(Status.id < _id_at(parsed.before))
    if parsed.after is not None:
        statement = statement.where(Status.id >= _id_at(parsed.after))
    return statement


async def search_statuses(session: AsyncSession, query: StatusQuery) -> list[Status]:
    """Matching statuses the viewer may see, newest first.

    Direct messages are found only by their author: a search box is not where a conversation
    should surface to its other participants' screens by accident.
    """
    parsed = query.parsed
    if not parsed.words and not parsed.has_filters:
        return []
    dialect = session.get_bind().dialect.name
    hidden = await hidden_account_ids(session, query.viewer_id)
    base = select(Status).where(
        Status.reblog_of_id.is_(None),
        visible_to(query.viewer_id),
        not_hidden(hidden),
        _searchable_author(query.viewer_id),
        or_(Status.visibility != "direct", Status.account_id == query.viewer_id),
    )
    if parsed.words:
        base = base.where(_matches(dialect, parsed.words))
    narrowed = await _with_operators(session, base, query)
    if narrowed is None:
        return []
    statement = narrowed
    if query.account_id is not None:
        statement = statement.where(Status.account_id == query.account_id)
    if query.max_id is not None:
        statement = statement.where(Status.id < query.max_id)
    if query.min_id is not None:
        statement = statement.where(Status.id > query.min_id)
    # min_id alone asks for the page just after it, as in timelines; still returned newest first.
    ascending = query.min_id is not None and query.max_id is None
    order = Status.id.asc() if ascending else Status.id.desc()
    statement = statement.order_by(order).limit(query.limit).offset(query.offset)
    found = list(await session.scalars(statement))
    return found[::-1] if ascending else found
