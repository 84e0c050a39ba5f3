"""The public and hashtag timelines: public statuses only, never reblogs.

Every account lives on this instance, so ``local`` changes nothing and ``remote`` is empty.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, exists, false, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from townsquare.accounts.models import Account
from townsquare.api.pagination import Page
from townsquare.privacy import hidden_account_ids, not_hidden
from townsquare.statuses.models import Status, StatusTag, Tag
from townsquare.timelines.filters import follows_author, has_media, not_a_reply_to_others

MainTag = aliased(StatusTag, name="main_tag")


@dataclass(frozen=True)
class PublicFilter:
    local: bool = False
    remote: bool = False
    only_media: bool = False


@dataclass(frozen=True)
class TagFilter:
    any: Sequence[str] = field(default_factory=tuple)
    all: Sequence[str] = field(default_factory=tuple)
    none: Sequence[str] = field(default_factory=tuple)


def normalise_tag(name: str) -> str:
    return name.strip().lstrip("#").lower()


def _not_silenced(reader_id: int | None) -> ColumnElement[bool]:
    """Silenced accounts stay out of public timelines, except for their followers."""
    quiet = Account.silenced_at.is_(None)
    if reader_id is None:
        return quiet
    return or_(quiet, Status.account_id == reader_id, follows_author(reader_id))


async def _public_statuses(
    session: AsyncSession, reader_id: int | None, where: PublicFilter
) -> Select[Any]:
    hidden = await hidden_account_ids(session, reader_id)
    query = (
        select(Status)
        .join(Account, Account.id == Status.account_id)
        .where(
            Status.visibility == "public",
            Status.reblog_of_id.is_(None),
            Account.suspended_at.is_(None),
            _not_silenced(reader_id),
            not_hidden(hidden),
            has_media(where.only_media),
        )
    )
    if where.remote and not where.local:
        query = query.where(false())
    return query


async def public_timeline(
    session: AsyncSession, reader_id: int | None, page: Page, where: PublicFilter
) -> list[Status]:
    query = (await _public_statuses(session, reader_id, where)).where(not_a_reply_to_others())
    return page.finish((await session.scalars(page.apply(query, Status.id))).all())


async def _tag_ids(session: AsyncSession, names: Sequence[str]) -> dict[str, int]:
    keys = {normalise_tag(name) for name in names if normalise_tag(name)}
    if not keys:
        return {}
    rows = await session.execute(select(Tag.name_key, Tag.id).where(Tag.name_key.in_(keys)))
    return {row.name_key: row.id for row in rows}


def _tagged(tag_ids: Sequence[int]) -> ColumnElement[bool]:
    return exists().where(StatusTag.status_id == Status.id, StatusTag.tag_id.in_(tag_ids))


async def tag_timeline(
    session: AsyncSession,
    reader_id: int | None,
    hashtag: str,
    page: Page,
    where: PublicFilter,
    tags: TagFilter,
) -> list[Status]:
    known = await _tag_ids(session, [hashtag, *tags.any, *tags.all, *tags.none])
    wanted = [
        known[key] for key in {normalise_tag(n) for n in [hashtag, *tags.any]} if key in known
    ]
    if not wanted:
        return []
    query = await _public_statuses(session, reader_id, where)
    paging_column = Status.id
    if len(wanted) == 1:
        # One hashtag (the usual case): walk that tag's index newest first, so a rare tag does
        # not scan every public status.
        query = query.join(
            MainTag, and_(MainTag.status_id == Status.id, MainTag.tag_id == wanted[0])
        )
        paging_column = MainTag.status_id
    else:
        query = query.where(_tagged(wanted))
    for name in tags.all:
        key = normalise_tag(name)
        if key not in known:
            return []
        query = query.where(_tagged([known[key]]))
    excluded = [known[key] for key in {normalise_tag(n) for n in tags.none} if key in known]
    if excluded:
        query = query.where(~_tagged(excluded))
    return page.finish((await session.scalars(page.apply(query, paging_column))).all())
