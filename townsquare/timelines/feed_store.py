"""Writing home-feed rows so that writing them twice has no visible effect."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson
from sqlalchemy import delete, select, text
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from townsquare.db.base import Base
from townsquare.statuses.models import Status
from townsquare.timelines.models import HomeFeedEntry


def _insert_for(session: AsyncSession) -> Any:
    """The dialect's INSERT, which knows ``ON CONFLICT DO NOTHING``."""
    return postgresql_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert


async def insert_ignoring_duplicates(
    session: AsyncSession, model: type[Base], rows: Sequence[dict[str, Any]]
) -> None:
    if rows:
        await session.execute(
            _insert_for(session)(model).values(list(rows)).on_conflict_do_nothing()
        )


# One statement for any number of rows, whose values are one or two parameters: on SQLite a JSON
# object of each status's readers, ``{"<status id>": [account ids]}``, read with json_each; on
# PostgreSQL two arrays unnested side by side. A row of parameters per entry cost more CPU in
# SQLAlchemy's handling of them than the database took to insert them, and a statement per
# status a round trip each on PostgreSQL. On SQLite the rows are grouped by status because a
# JSON array of pairs, taken apart with json_extract row by row, cost SQLite more than the
# insert itself (the insert runs while the write lock is held).
_INSERT_ENTRIES = {
    "sqlite": text(
        "INSERT INTO home_feed (account_id, status_id) "
        "SELECT reader.value, CAST(status.key AS INTEGER) "
        "FROM json_each(:readers) AS status, json_each(status.value) AS reader WHERE true "
        "ON CONFLICT DO NOTHING RETURNING account_id, status_id"
    ),
    "postgresql": text(
        "INSERT INTO home_feed (account_id, status_id) "
        "SELECT * FROM unnest(CAST(:account_ids AS BIGINT[]), CAST(:status_ids AS BIGINT[])) "
        "ON CONFLICT DO NOTHING RETURNING account_id, status_id"
    ),
}


async def add_feed_entries(
    session: AsyncSession, entries: Sequence[tuple[int, int]]
) -> list[tuple[int, int]]:
    """Insert ``(account_id, status_id)`` rows, ignoring those already there.

    Returns only the rows this call inserted, so events are published once per row even when a
    job runs again after a crash.
    """
    if not entries:
        return []
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        values: dict[str, Any] = {
            "account_ids": [account for account, _ in entries],
            "status_ids": [status for _, status in entries],
        }
    else:
        readers: dict[str, list[int]] = {}
        for account, status in entries:
            readers.setdefault(str(status), []).append(account)
        values = {"readers": orjson.dumps(readers).decode()}
    result = await session.execute(_INSERT_ENTRIES[dialect], values)
    return [(int(account), int(status)) for account, status in result]


async def remove_author_from_feed(session: AsyncSession, account_id: int, author_id: int) -> None:
    """Drop what ``author_id`` wrote or reblogged from one home feed (after an unfollow)."""
    authored = select(Status.id).where(Status.account_id == author_id).scalar_subquery()
    await session.execute(
        delete(HomeFeedEntry).where(
            HomeFeedEntry.account_id == account_id, HomeFeedEntry.status_id.in_(authored)
        )
    )
