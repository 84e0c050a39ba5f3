"""Trends from recent public activity: hashtags used by the most people, most-shared statuses.

Only public statuses of accounts in good standing count, over the last :data:`TREND_DAYS` days.
Ids are time-ordered, so "the last seven days" is a primary-key range.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from townsquare.accounts.models import Account
from townsquare.config import Settings
from townsquare.db.base import utcnow
from townsquare.ids import id_at, id_time_ms
from townsquare.privacy import hidden_account_ids, not_hidden, visible_to
from townsquare.statuses.models import Status, StatusTag, Tag, TagFollow

TREND_DAYS = 7
# Enough rows to draw a week of history for a page of tags without scanning without bound.
MAX_HISTORY_ROWS = 20_000


def _day_start(moment: dt.datetime) -> dt.datetime:
    return moment.astimezone(dt.UTC).replace(hour=0, minute=0, second=0, microsecond=0)


def _id_at(moment: dt.datetime) -> int:
    return id_at(int(moment.timestamp() * 1000))


def _trend_window_start() -> int:
    return _id_at(_day_start(utcnow()) - dt.timedelta(days=TREND_DAYS - 1))


def _good_standing() -> Any:
    return Status.account_id.not_in(select(Account.id).where(Account.suspended_at.is_not(None)))


async def tag_histories(
    session: AsyncSession, tag_ids: Iterable[int]
) -> dict[int, list[dict[str, str]]]:
    """Mastodon's tag ``history``: uses and distinct accounts per day, today first, 7 days."""
    ids = list(set(tag_ids))
    days = [_day_start(utcnow()) - dt.timedelta(days=n) for n in range(TREND_DAYS)]
    uses: dict[tuple[int, int], int] = defaultdict(int)
    authors: dict[tuple[int, int], set[int]] = defaultdict(set)
    if ids:
        rows = await session.execute(
            select(StatusTag.tag_id, Status.id, Status.account_id)
            .join(Status, Status.id == StatusTag.status_id)
            .where(
                StatusTag.tag_id.in_(ids),
                Status.id >= _id_at(days[-1]),
                Status.visibility == "public",
                _good_standing(),
            )
            .limit(MAX_HISTORY_ROWS)
        )
        for tag_id, status_id, account_id in rows:
            day = int(id_time_ms(status_id) // 86_400_000)
            uses[(tag_id, day)] += 1
            authors[(tag_id, day)].add(account_id)
    result = {}
    for tag_id in ids:
        history = []
        for start in days:
            key = (tag_id, int(start.timestamp() // 86_400))
            history.append(
                {
                    "day": str(int(start.timestamp())),
                    "uses": str(uses.get(key, 0)),
                    "accounts": str(len(authors.get(key, ()))),
                }
            )
        result[tag_id] = history
    return result


async def followed_tag_ids(
    session: AsyncSession, viewer_id: int | None, tag_ids: Iterable[int]
) -> set[int] | None:
    """Which of ``tag_ids`` the viewer follows; None for anonymous viewers."""
    if viewer_id is None:
        return None
    ids = list(tag_ids)
    if not ids:
        return set()
    rows = await session.scalars(
        select(TagFollow.tag_id).where(TagFollow.account_id == viewer_id, TagFollow.tag_id.in_(ids))
    )
    return set(rows)


async def render_tags(
    session: AsyncSession, settings: Settings, viewer_id: int | None, tags: Sequence[Tag]
) -> list[dict[str, Any]]:
    """``Tag`` entities with their week of history (and ``following`` for a logged-in viewer)."""
    histories = await tag_histories(session, [tag.id for tag in tags])
    following = await followed_tag_ids(session, viewer_id, [tag.id for tag in tags])
    rendered = []
    for tag in tags:
        entity: dict[str, Any] = {
            "id": str(tag.id),
            "name": tag.name,
            "url": f"{settings.public_url}/tags/{tag.name}",
            "history": histories.get(tag.id, []),
        }
        if following is not None:
            entity["following"] = tag.id in following
            entity["featuring"] = False
        rendered.append(entity)
    return rendered


async def trending_tags(session: AsyncSession, *, limit: int, offset: int) -> list[Tag]:
    """Tags used by the most distinct accounts in public statuses over the last week."""
    people = func.count(func.distinct(Status.account_id))
    ranked = (
        select(StatusTag.tag_id, people.label("people"), func.count().label("uses"))
        .join(Status, Status.id == StatusTag.status_id)
        .where(Status.id >= _trend_window_start(), Status.visibility == "public", _good_standing())
        .group_by(StatusTag.tag_id)
        .order_by(people.desc(), func.count().desc(), StatusTag.tag_id.desc())
        .limit(limit)
        .offset(offset)
    )
    order = [row.tag_id for row in await session.execute(ranked)]
    if not order:
        return []
    tags = {tag.id: tag for tag in await session.scalars(select(Tag).where(Tag.id.in_(order)))}
    return [tags[tag_id] for tag_id in order if tag_id in tags]


async def trending_statuses(
    session: AsyncSession, viewer_id: int | None, *, limit: int, offset: int
) -> list[Status]:
    """Recent public, original statuses with the most favourites and reblogs the viewer may see."""
    hidden = await hidden_account_ids(session, viewer_id)
    score = Status.favourites_count + Status.reblogs_count
    query = (
        select(Status)
        .where(
            Status.id >= _trend_window_start(),
            Status.visibility == "public",
            Status.reblog_of_id.is_(None),
            score > 0,
            visible_to(viewer_id),
            not_hidden(hidden),
        )
        .order_by(score.desc(), Status.id.desc())
        .limit(limit)
        .offset(offset)
    )
    return list(await session.scalars(query))
