"""How far back home feeds are materialised.

``home_feed`` holds the last ``HOME_FEED_DAYS`` days; older rows are deleted every hour, and older
pages of a home timeline are read straight from the statuses of the accounts followed (the same
pull used for very large authors). The table so stays proportional to recent activity, while
scrolling back still works.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, cast

from sqlalchemy import delete, select, tuple_
from sqlalchemy.engine import CursorResult

from townsquare.db.base import utcnow
from townsquare.ids import id_at
from townsquare.jobs.periodic import periodic
from townsquare.state import AppState
from townsquare.timelines.models import HomeFeedEntry

HOME_FEED_DAYS = 30
TRIM_BATCH = 5000


def feed_boundary(now: dt.datetime | None = None) -> int:
    """The smallest status id kept in home feeds."""
    moment = (now or utcnow()) - dt.timedelta(days=HOME_FEED_DAYS)
    return id_at(int(moment.timestamp() * 1000))


@periodic("timelines.trim_home_feeds", every_seconds=3600)
async def trim_home_feeds(state: AppState) -> None:
    boundary = feed_boundary()
    while True:
        # In batches, so the SQLite writer is never held for long.
        async with state.db.write() as session:
            doomed = (
                select(HomeFeedEntry.account_id, HomeFeedEntry.status_id)
                .where(HomeFeedEntry.status_id < boundary)
                .limit(TRIM_BATCH)
            )
            result = cast(
                CursorResult[Any],
                await session.execute(
                    delete(HomeFeedEntry)
                    .where(tuple_(HomeFeedEntry.account_id, HomeFeedEntry.status_id).in_(doomed))
                    .execution_options(synchronize_session=False)
                ),
            )
        if result.rowcount < TRIM_BATCH:
            return
