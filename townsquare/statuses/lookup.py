"""Finding statuses for a viewer: a status the viewer may not see does not exist for them."""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, case
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from townsquare.api.errors import ApiError
from townsquare.privacy import can_view_status
from townsquare.statuses.models import Status


async def visible_status(
    session: AsyncSession, viewer_id: int | None, status_id: int, *, for_update: bool = False
) -> Status:
    """The status, or a 404 when it is missing or hidden from the viewer (never a 403, which
    would confirm that a private status exists)."""
    status = await session.get(Status, status_id, with_for_update=for_update)
    if status is None or not await can_view_status(session, viewer_id, status):
        raise ApiError(404, "Record not found")
    return status


async def own_status(session: AsyncSession, account_id: int, status_id: int) -> Status:
    status = await session.get(Status, status_id)
    if status is None or status.account_id != account_id or status.reblog_of_id is not None:
        raise ApiError(404, "Record not found")
    return status


async def original_of(session: AsyncSession, status: Status) -> Status:
    """Actions on a reblog act on the status it reblogs, as in Mastodon."""
    if status.reblog_of_id is None:
        return status
    original = await session.get(Status, status.reblog_of_id)
    if original is None:
        raise ApiError(404, "Record not found")
    return original


async def insert_once(session: AsyncSession, row: Any) -> bool:
    """Insert ``row`` unless its unique key already exists; True when it was inserted.

    Two concurrent requests (a double tap) may both try; the database's unique key lets only
    one through, and the other simply finds the row there.
    """
    try:
        async with session.begin_nested():
            session.add(row)
    except IntegrityError:
        return False
    return True


def decremented(column: InstrumentedAttribute[int]) -> ColumnElement[int]:
    """``column - 1`` without going below zero (the same SQL on SQLite and PostgreSQL)."""
    return case((column > 0, column - 1), else_=0)
