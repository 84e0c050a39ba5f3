"""Content filters (Mastodon's v2 filters): storing them, and matching statuses against them.

A filter has a title, the contexts it applies in, an action (``warn``, ``hide``, ``blur``), an
optional expiry, and keywords and/or specific statuses. Version-1 filters are single keywords.
"""

from __future__ import annotations

import datetime as dt
import re
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import delete, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from townsquare.api.errors import ApiError
from townsquare.db.base import utcnow
from townsquare.ids import new_id
from townsquare.instance.models import Filter, FilterKeyword, FilterStatus
from townsquare.statuses.models import Status

MAX_FILTERS = 100
MAX_KEYWORDS = 100
MAX_FILTER_STATUSES = 100


@dataclass(frozen=True)
class KeywordChange:
    """One entry of ``keywords_attributes``: a new keyword, a change, or a removal."""

    keyword_id: int | None = None
    keyword: str | None = None
    whole_word: bool | None = None
    destroy: bool = False


@dataclass(frozen=True)
class FilterChanges:
    title: str | None = None
    context: list[str] | None = None
    filter_action: str | None = None
    expires_in: int | None = None
    clear_expiry: bool = False
    keywords: list[KeywordChange] = field(default_factory=list)


@dataclass
class FilterParts:
    keywords: dict[int, list[FilterKeyword]]
    statuses: dict[int, list[FilterStatus]]


def _expiry(seconds: int | None) -> dt.datetime | None:
    return utcnow() + dt.timedelta(seconds=seconds) if seconds else None


async def list_filters(session: AsyncSession, account_id: int) -> list[Filter]:
    return list(
        await session.scalars(
            select(Filter).where(Filter.account_id == account_id).order_by(Filter.id)
        )
    )


async def own_filter(session: AsyncSession, account_id: int, filter_id: int) -> Filter:
    found = await session.get(Filter, filter_id)
    if found is None or found.account_id != account_id:
        raise ApiError(404, "Record not found")
    return found


async def load_parts(session: AsyncSession, filter_ids: Iterable[int]) -> FilterParts:
    ids = list(set(filter_ids))
    parts = FilterParts(defaultdict(list), defaultdict(list))
    if not ids:
        return parts
    for keyword in await session.scalars(
        select(FilterKeyword).where(FilterKeyword.filter_id.in_(ids)).order_by(FilterKeyword.id)
    ):
        parts.keywords[keyword.filter_id].append(keyword)
    for status in await session.scalars(
        select(FilterStatus).where(FilterStatus.filter_id.in_(ids)).order_by(FilterStatus.id)
    ):
        parts.statuses[status.filter_id].append(status)
    return parts


async def _count(session: AsyncSession, model: Any, *where: Any) -> int:
    return int(await session.scalar(select(func.count()).select_from(model).where(*where)) or 0)


async def _apply_keywords(
    session: AsyncSession, found: Filter, changes: Sequence[KeywordChange]
) -> None:
    for change in changes:
        if change.keyword_id is None:
            if change.destroy:
                continue
            if not change.keyword:
                raise ApiError(422, "Validation failed: keyword can't be blank")
            await add_keyword(session, found, change.keyword, change.whole_word is not False)
            continue
        keyword = await session.get(FilterKeyword, change.keyword_id)
        if keyword is None or keyword.filter_id != found.id:
            raise ApiError(404, "Record not found")
        if change.destroy:
            await session.delete(keyword)
            continue
        if change.keyword is not None:
            keyword.keyword = change.keyword
        if change.whole_word is not None:
            keyword.whole_word = change.whole_word
    await session.flush()


async def create_filter(
    session: AsyncSession, account_id: int, title: str, context: list[str], changes: FilterChanges
) -> Filter:
    if await _count(session, Filter, Filter.account_id == account_id) >= MAX_FILTERS:
        raise ApiError(422, f"Validation failed: at most {MAX_FILTERS} filters")
    created = Filter(
        id=new_id(),
        account_id=account_id,
        title=title,
        context=context,
        filter_action=changes.filter_action or "warn",
        expires_at=_expiry(changes.expires_in),
    )
    session.add(created)
    await session.flush()
    await _apply_keywords(session, created, changes.keywords)
    return created


async def update_filter(session: AsyncSession, found: Filter, changes: FilterChanges) -> Filter:
    if changes.title is not None:
        found.title = changes.title
    if changes.context is not None:
        found.context = changes.context
    if changes.filter_action is not None:
        found.filter_action = changes.filter_action
    if changes.clear_expiry:
        found.expires_at = None
    elif changes.expires_in is not None:
        found.expires_at = _expiry(changes.expires_in)
    await _apply_keywords(session, found, changes.keywords)
    return found


async def delete_filter(session: AsyncSession, found: Filter) -> None:
    await session.execute(delete(FilterKeyword).where(FilterKeyword.filter_id == found.id))
    await session.execute(delete(FilterStatus).where(FilterStatus.filter_id == found.id))
    await session.delete(found)
    await session.flush()


async def add_keyword(
    session: AsyncSession, found: Filter, keyword: str, whole_word: bool
) -> FilterKeyword:
    if await _count(session, FilterKeyword, FilterKeyword.filter_id == found.id) >= MAX_KEYWORDS:
        raise ApiError(422, f"Validation failed: at most {MAX_KEYWORDS} keywords per filter")
    created = FilterKeyword(id=new_id(), filter_id=found.id, keyword=keyword, whole_word=whole_word)
    session.add(created)
    await session.flush()
    return created


async def own_keyword(
    session: AsyncSession, account_id: int, keyword_id: int
) -> tuple[FilterKeyword, Filter]:
    keyword = await session.get(FilterKeyword, keyword_id)
    if keyword is None:
        raise ApiError(404, "Record not found")
    return keyword, await own_filter(session, account_id, keyword.filter_id)


async def add_status(session: AsyncSession, found: Filter, status_id: int) -> FilterStatus:
    if await session.get(Status, status_id) is None:
        raise ApiError(404, "Record not found")
    existing = await session.scalar(
        select(FilterStatus).where(
            FilterStatus.filter_id == found.id, FilterStatus.status_id == status_id
        )
    )
    if existing is not None:
        raise ApiError(422, "Validation failed: status is already in this filter")
    if (
        await _count(session, FilterStatus, FilterStatus.filter_id == found.id)
        >= MAX_FILTER_STATUSES
    ):
        raise ApiError(422, f"Validation failed: at most {MAX_FILTER_STATUSES} statuses")
    created = FilterStatus(id=new_id(), filter_id=found.id, status_id=status_id)
    session.add(created)
    await session.flush()
    return created


async def own_filter_status(
    session: AsyncSession, account_id: int, filter_status_id: int
) -> tuple[FilterStatus, Filter]:
    entry = await session.get(FilterStatus, filter_status_id)
    if entry is None:
        raise ApiError(404, "Record not found")
    return entry, await own_filter(session, account_id, entry.filter_id)


def keyword_pattern(keyword: FilterKeyword) -> re.Pattern[str]:
    """Case-insensitive; a whole-word keyword may not run into letters on either side."""
    body = re.escape(keyword.keyword)
    if keyword.whole_word:
        start = r"(?<!\w)" if keyword.keyword[:1].isalnum() else ""
        end = r"(?!\w)" if keyword.keyword[-1:].isalnum() else ""
        body = start + body + end
    return re.compile(body, re.IGNORECASE)


async def filter_matches(
    session: AsyncSession, viewer_id: int | None, statuses: Sequence[Status], context: str
) -> dict[int, list[dict[str, Any]]]:
    """``FilterResult`` entities for each status the viewer's active filters match in
    ``context`` (``home``, ``notifications``, ``public``, ``thread``, ``account``).

    Statuses without matches are absent. Rendering code puts the list in ``filtered``.
    """
    if viewer_id is None or not statuses:
        return {}
    now = utcnow()
    active = [
        found
        for found in await session.scalars(
            select(Filter).where(
                Filter.account_id == viewer_id,
                or_(Filter.expires_at.is_(None), Filter.expires_at > now),
            )
        )
        if context in (found.context or [])
    ]
    if not active:
        return {}
    parts = await load_parts(session, [found.id for found in active])
    results: dict[int, list[dict[str, Any]]] = {}
    for status in statuses:
        searchable = f"{status.spoiler_text}\n{status.text}"
        for found in active:
            words = [
                keyword.keyword
                for keyword in parts.keywords.get(found.id, [])
                if keyword_pattern(keyword).search(searchable)
            ]
            status_hits = [
                str(entry.status_id)
                for entry in parts.statuses.get(found.id, [])
                if entry.status_id == status.id
            ]
            if words or status_hits:
                results.setdefault(status.id, []).append(
                    {
                        "filter": filter_entity(found, parts),
                        "keyword_matches": words or None,
                        "status_matches": status_hits or None,
                    }
                )
    return results


def _iso(moment: dt.datetime | None) -> str | None:
    if moment is None:
        return None
    utc = moment.astimezone(dt.UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


def keyword_entity(keyword: FilterKeyword) -> dict[str, Any]:
    return {"id": str(keyword.id), "keyword": keyword.keyword, "whole_word": keyword.whole_word}


def filter_status_entity(entry: FilterStatus) -> dict[str, Any]:
    return {"id": str(entry.id), "status_id": str(entry.status_id)}


def filter_entity(found: Filter, parts: FilterParts) -> dict[str, Any]:
    return {
        "id": str(found.id),
        "title": found.title,
        "context": list(found.context or []),
        "expires_at": _iso(found.expires_at),
        "filter_action": found.filter_action,
        "keywords": [keyword_entity(k) for k in parts.keywords.get(found.id, [])],
        "statuses": [filter_status_entity(s) for s in parts.statuses.get(found.id, [])],
    }


def v1_filter_entity(keyword: FilterKeyword, found: Filter) -> dict[str, Any]:
    """A version-1 filter is one keyword of a filter, with the filter's context and expiry."""
    return {
        "id": str(keyword.id),
        "phrase": keyword.keyword,
        "context": list(found.context or []),
        "whole_word": keyword.whole_word,
        "expires_at": _iso(found.expires_at),
        "irreversible": found.filter_action == "hide",
    }
