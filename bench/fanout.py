"""How long a post takes to reach every follower's home feed, read straight from the database."""

from __future__ import annotations

import asyncio
import datetime as dt
import statistics
import time
from dataclasses import dataclass

import httpx
import orjson
from sqlalchemy import func, or_, select, type_coerce

from townsquare.accounts.models import Account
from townsquare.db.base import UTCDateTime
from townsquare.db.engine import Database
from townsquare.jobs.models import Job
from townsquare.statuses.models import Status
from townsquare.streaming.models import StreamEvent
from townsquare.streaming.publish import ACCOUNTS_CHANNEL, addressed_channels
from townsquare.timelines.models import HomeFeedEntry

POLL_SECONDS = 0.005
GIVE_UP_SECONDS = 60.0


@dataclass
class FanoutDelays:
    samples: int
    followers_mean: float
    p50_ms: float
    p99_ms: float
    max_ms: float


def percentile(values: list[float], share: float) -> float:
    """The nearest-rank percentile (``share`` in 0..1) of a non-empty list."""
    ordered = sorted(values)
    rank = max(1, round(share * len(ordered) + 0.5))
    return ordered[min(rank, len(ordered)) - 1]


async def _rows_for(db: Database, status_id: int) -> int:
    async with db.read() as session:
        count = await session.scalar(
            select(func.count())
            .select_from(HomeFeedEntry)
            .where(HomeFeedEntry.status_id == status_id)
        )
        return int(count or 0)


async def measure_fanout_delay(
    url: str, database_url: str, users: list[tuple[str, str]], samples: int
) -> FanoutDelays:
    """Post one status at a time; time from the acknowledgement to the last home-feed row.

    ``users`` are (username, token) pairs, as in the seed's tokens file.
    """
    db = Database(database_url, pool_size=2)
    delays: list[float] = []
    audiences: list[int] = []
    try:
        async with httpx.AsyncClient(base_url=url, timeout=30) as client:
            for index in range(samples):
                username, token = users[index % len(users)]
                async with db.read() as session:
                    followers = await session.scalar(
                        select(Account.followers_count).where(Account.username == username)
                    )
                expected = int(followers or 0) + 1  # the author's own home feed too
                response = await client.post(
                    "/api/v1/statuses",
                    headers={"Authorization": f"Bearer {token}"},
                    data={"status": f"Fan-out probe {index}"},
                )
                response.raise_for_status()
                acknowledged = time.perf_counter()
                status_id = int(response.json()["id"])
                while await _rows_for(db, status_id) < expected:
                    if time.perf_counter() - acknowledged > GIVE_UP_SECONDS:
                        raise RuntimeError(f"fan-out of {status_id} did not complete")
                    await asyncio.sleep(POLL_SECONDS)
                delays.append(time.perf_counter() - acknowledged)
                audiences.append(expected - 1)
    finally:
        await db.dispose()
    return FanoutDelays(
        samples=len(delays),
        followers_mean=statistics.fmean(audiences),
        p50_ms=statistics.median(delays) * 1000,
        p99_ms=percentile(delays, 0.99) * 1000,
        max_ms=max(delays) * 1000,
    )


async def fanout_delays_since(database_url: str, since: dt.datetime) -> FanoutDelays:
    """Fan-out delay of every status posted since ``since`` (during a load run), from the rows.

    A status's fan-out is complete when its last batch of home-feed rows was written; each batch
    writes an ``update`` event for its readers' ``user:`` channels in the same transaction, so
    the newest of those events, minus the status's ``created_at``, is the delay.
    """
    db = Database(database_url, pool_size=2)
    done: dict[int, dt.datetime] = {}
    readers: dict[int, int] = {}
    delays: list[float] = []
    try:
        async with db.read() as session:
            rows = await session.execute(
                select(
                    StreamEvent.channel,
                    StreamEvent.payload,
                    type_coerce(StreamEvent.created_at, UTCDateTime()),
                ).where(
                    StreamEvent.event == "update",
                    or_(
                        StreamEvent.channel == ACCOUNTS_CHANNEL,
                        StreamEvent.channel.like("user:%"),
                    ),
                    StreamEvent.created_at >= since,
                )
            )
            for channel, payload, created_at in rows:
                # A batch's readers' events are one row or a row each (before that changed).
                addressed = addressed_channels(channel, orjson.loads(payload))
                if not addressed:
                    continue
                status_id = int(addressed[0][1]["status_id"])
                done[status_id] = max(done.get(status_id, created_at), created_at)
                readers[status_id] = readers.get(status_id, 0) + len(addressed)
            ids = list(done)
            for start in range(0, len(ids), 500):
                created = await session.execute(
                    select(Status.id, Status.created_at).where(
                        Status.id.in_(ids[start : start + 500]), Status.created_at >= since
                    )
                )
                for status_id, created_at in created:
                    delays.append(max(0.0, (done[status_id] - created_at).total_seconds()))
    finally:
        await db.dispose()
    if not delays:
        return FanoutDelays(0, 0.0, 0.0, 0.0, 0.0)
    return FanoutDelays(
        samples=len(delays),
        followers_mean=statistics.fmean(readers.values()) - 1,
        p50_ms=statistics.median(delays) * 1000,
        p99_ms=percentile(delays, 0.99) * 1000,
        max_ms=max(delays) * 1000,
    )


async def wait_for_fanout_queue(database_url: str) -> float:
    """Seconds until no fan-out job is waiting or running (after a burst of posts)."""
    db = Database(database_url, pool_size=2)
    started = time.perf_counter()
    try:
        while True:
            async with db.read() as session:
                pending = await session.scalar(
                    select(func.count())
                    .select_from(Job)
                    .where(Job.kind == "fanout", Job.state.in_(("queued", "running")))
                )
            if not pending:
                return time.perf_counter() - started
            if time.perf_counter() - started > GIVE_UP_SECONDS * 5:
                raise RuntimeError(f"{pending} fan-out jobs still pending")
            await asyncio.sleep(0.05)
    finally:
        await db.dispose()
