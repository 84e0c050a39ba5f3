"""Writing home-feed rows so that writing them twice has no visible effect."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import bindparam, delete, select, text
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from townsquare.db.base import Base
from townsquare.statuses.models import Status
from townsquare.statuses.page_reads import IdList
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


async def add_feed_entries(
    session: AsyncSession, entries: Sequence[tuple[int, int]]
) -> list[tuple[int, int]]:
    """Insert ``(account_id, status_id)`` rows, ignoring those already there.

    Returns only the rows this call inserted, so events are published once per row even when a
    job runs again after a crash.
    """
    if not entries:
        return []
    # One statement with the rows as parameters: SQLAlchemy sends them as multi-row INSERTs
    # ("insertmanyvalues") from one cached compilation, where ``.values([...])`` would build and
    # compile a new statement for every batch. Into the table, not the ORM entity: the ORM's
    # bulk insert examined every row's parameters again, which cost more than the INSERTs.
    table = HomeFeedEntry.__table__
    statement = (
        _insert_for(session)(table)
        .on_conflict_do_nothing()
        .returning(table.c.account_id, table.c.status_id)
    )
    result = await session.execute(
        statement, [{"account_id": a, "status_id": s} for a, s in entries]
    )
    return [(row.account_id, row.status_id) for row in result]


# One statement per status, whatever its number of readers: the readers go as one parameter
# (townsquare/statuses/page_reads.py's IdList). A row per reader as parameters cost more CPU
# in SQLAlchemy's handling of them than the database took to insert them.
_STATUS_TO_FEEDS = {
    dialect: text(sql).bindparams(bindparam("account_ids", type_=IdList()))
    for dialect, sql in (
        (
            "sqlite",
            "INSERT INTO home_feed (account_id, status_id) "
            "SELECT value, :status_id FROM json_each(:account_ids) WHERE true "
            "ON CONFLICT DO NOTHING RETURNING account_id",
        ),
        (
            "postgresql",
            "INSERT INTO home_feed (account_id, status_id) "
            "SELECT reader, CAST(:status_id AS BIGINT) "
            "FROM unnest(CAST(:account_ids AS BIGINT[])) AS reader "
            "ON CONFLICT DO NOTHING RETURNING account_id",
        ),
    )
}


async def add_status_to_feeds(
    session: AsyncSession, status_id: int, account_ids: Sequence[int]
) -> set[int]:
    """Put ``status_id`` in the home feeds of ``account_ids``, leaving the feeds that have it;
    returns the accounts whose row this call inserted (so events are published once per row
    even when a job runs again after a crash)."""
    if not account_ids:
        return set()
    statement = _STATUS_TO_FEEDS[session.get_bind().dialect.name]
    result = await session.execute(
        statement, {"status_id": status_id, "account_ids": list(account_ids)}
    )
    return set(result.scalars())


async def remove_author_from_feed(session: AsyncSession, account_id: int, author_id: int) -> None:
    """Drop what ``author_id`` wrote or reblogged from one home feed (after an unfollow)."""
    authored = select(Status.id).where(Status.account_id == author_id).scalar_subquery()
    await session.execute(
        delete(HomeFeedEntry).where(
            HomeFeedEntry.account_id == account_id, HomeFeedEntry.status_id.in_(authored)
        )
    )
