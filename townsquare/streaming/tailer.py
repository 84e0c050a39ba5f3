"""Tailing the ``stream_events`` log: every worker process reads new rows and hands them on.

Each process starts at the newest row present when it starts, reads what came after every
poll interval (or at once when a commit in this process published something), and deletes
rows older than the retention period now and then; several processes pruning at the same time
only delete the same rows twice.

Autoincrement ids are handed out when a row is inserted but become visible when its
transaction commits, so on PostgreSQL id 7 can appear after id 8 has been read. The cursor
remembers the ids it skipped over and looks for them again for a while, so no event is lost
to that race; an id still missing after ``gap_timeout`` belonged to a transaction that rolled
back.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import time
from collections.abc import Awaitable, Callable

import orjson
from sqlalchemy import BigInteger, Integer, bindparam, delete, func, select

from townsquare.db.base import utcnow
from townsquare.db.engine import Database
from townsquare.streaming.bus import ChannelEvent
from townsquare.streaming.models import StreamEvent
from townsquare.streaming.publish import addressed_channels

log = logging.getLogger("townsquare.streaming")

# Ids skipped over in one jump beyond this many are not waited for (a sequence that jumped
# after a failover, not a burst of concurrent transactions).
MAX_GAPS = 2_000


class EventCursor:
    """The highest id handed on, and the ids below it that have not been seen yet."""

    def __init__(self, start: int, *, gap_timeout: float) -> None:
        self.high = start
        self.gap_timeout = gap_timeout
        self._gaps: dict[int, float] = {}

    def missing(self) -> list[int]:
        return sorted(self._gaps)

    def accept(self, ids: list[int], now: float) -> set[int]:
        """Record ``ids`` as read; return those not handed on before."""
        fresh: set[int] = set()
        for event_id in sorted(ids):
            if event_id in self._gaps:
                del self._gaps[event_id]
                fresh.add(event_id)
            elif event_id > self.high:
                skipped = event_id - self.high - 1
                if skipped > 0 and len(self._gaps) + skipped <= MAX_GAPS:
                    for missing in range(self.high + 1, event_id):
                        self._gaps[missing] = now
                self.high = event_id
                fresh.add(event_id)
        for event_id, noticed in list(self._gaps.items()):
            if now - noticed > self.gap_timeout:
                del self._gaps[event_id]
        return fresh


EventHandler = Callable[[list[ChannelEvent]], Awaitable[None]]

_COLUMNS = (StreamEvent.id, StreamEvent.channel, StreamEvent.event, StreamEvent.payload)
# Built once: each commit of this process wakes the tailer, and building the statement and its
# cache key cost more than running it.
_NEWER_EVENTS = (
    select(*_COLUMNS)
    .where(StreamEvent.id > bindparam("after", type_=BigInteger))
    .order_by(StreamEvent.id)
    .limit(bindparam("limit", type_=Integer))
)


class EventTailer:
    def __init__(
        self,
        db: Database,
        handle: EventHandler,
        *,
        poll_interval: float,
        retention: float,
        batch_size: int = 500,
        gap_timeout: float = 10.0,
        prune_every: float = 60.0,
        listened: Callable[[str], bool] | None = None,
    ) -> None:
        self.db = db
        self.handle = handle
        self.poll_interval = poll_interval
        self.retention = retention
        self.batch_size = batch_size
        self.prune_every = prune_every
        # Which channels have subscribers in this process: an event addressed to many
        # readers' user streams is handed on only for those (see ``addressed_channels``).
        self.listened = listened
        self.cursor = EventCursor(0, gap_timeout=gap_timeout)
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._last_prune = time.monotonic()

    async def start(self) -> None:
        async with self.db.read() as session:
            newest = (await session.execute(select(func.max(StreamEvent.id)))).scalar()
        self.cursor.high = int(newest or 0)
        self._task = asyncio.create_task(self._run(), name="stream-event-tailer")

    async def stop(self) -> None:
        if self._task is None:
            return
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        self._task = None

    def wake(self) -> None:
        """Poll now rather than at the next interval (a commit here published an event)."""
        self._wake.set()

    async def _run(self) -> None:
        failures = 0
        while True:
            try:
                events = await self.poll()
                if events:
                    await self.handle(events)
                if time.monotonic() - self._last_prune >= self.prune_every:
                    self._last_prune = time.monotonic()
                    await self.prune()
                failures = 0
                if len(events) >= self.batch_size:
                    continue  # more are waiting
            except asyncio.CancelledError:
                raise
            except Exception:
                failures += 1
                log.warning("reading stream events failed", exc_info=True)
                await asyncio.sleep(min(5.0, self.poll_interval * 2**failures))
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.poll_interval)
            self._wake.clear()

    async def poll(self) -> list[ChannelEvent]:
        missing = self.cursor.missing()
        # Rows after the cursor by primary key, and the few ids it waits for: a quick read (on
        # SQLite no hop to a connection thread and back; every commit here wakes this).
        async with self.db.quick_read() as session:
            rows = list(
                (
                    await session.execute(
                        _NEWER_EVENTS, {"after": self.cursor.high, "limit": self.batch_size}
                    )
                ).all()
            )
            if missing:
                rows += (
                    await session.execute(select(*_COLUMNS).where(StreamEvent.id.in_(missing)))
                ).all()
        fresh = self.cursor.accept([row.id for row in rows], time.monotonic())
        rows.sort(key=lambda row: row.id)
        return [
            ChannelEvent(row.id, channel, row.event, payload)
            for row in rows
            if row.id in fresh
            for channel, payload in addressed_channels(
                row.channel, _decode(row.payload), self.listened
            )
        ]

    async def prune(self) -> int:
        cutoff = utcnow() - dt.timedelta(seconds=self.retention)
        # The newest row always stays: SQLite would otherwise hand out its id again once the
        # table is empty, and every tailer's cursor would be past it.
        newest = select(func.max(StreamEvent.id)).scalar_subquery()
        async with self.db.write() as session:
            result = await session.execute(
                delete(StreamEvent).where(StreamEvent.created_at < cutoff, StreamEvent.id < newest)
            )
        return int(getattr(result, "rowcount", 0) or 0)


def _decode(payload: str) -> object:
    try:
        return orjson.loads(payload)
    except orjson.JSONDecodeError:
        return payload
