"""Read markers: where someone stopped reading home and notifications, shared across devices."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from townsquare.db.base import utcnow
from townsquare.timelines.models import Marker

MARKER_TIMELINES = ("home", "notifications")


async def markers_of(
    session: AsyncSession, account_id: int, timelines: Sequence[str]
) -> list[Marker]:
    wanted = [name for name in timelines if name in MARKER_TIMELINES]
    if not wanted:
        return []
    rows = await session.scalars(
        select(Marker)
        .where(Marker.account_id == account_id, Marker.timeline.in_(wanted))
        .execution_options(populate_existing=True)
    )
    return list(rows.all())


async def save_markers(
    session: AsyncSession, account_id: int, positions: dict[str, int]
) -> list[Marker]:
    """Move each marker; its version goes up by one every time, as clients expect.

    An upsert, so two devices saving the first marker at once cannot collide.
    """
    now = utcnow()
    insert = postgresql_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    for timeline, last_read_id in positions.items():
        statement = insert(Marker).values(
            account_id=account_id,
            timeline=timeline,
            last_read_id=last_read_id,
            version=1,
            updated_at=now,
        )
        await session.execute(
            statement.on_conflict_do_update(
                index_elements=[Marker.account_id, Marker.timeline],
                set_={
                    "last_read_id": statement.excluded.last_read_id,
                    "version": Marker.version + 1,
                    "updated_at": statement.excluded.updated_at,
                },
            )
        )
    return await markers_of(session, account_id, list(positions))
