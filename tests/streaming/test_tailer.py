"""The event log tailer: nothing skipped when ids commit out of order, old rows pruned."""

from __future__ import annotations

import datetime as dt

from fastapi import FastAPI
from sqlalchemy import func, insert, select

from townsquare.db.base import utcnow
from townsquare.state import state_of
from townsquare.streaming.bus import ChannelEvent
from townsquare.streaming.models import StreamEvent
from townsquare.streaming.publish import addressed_channels, publish, publish_to_accounts
from townsquare.streaming.tailer import EventCursor, EventTailer


def test_cursor_hands_on_each_id_once_even_out_of_order() -> None:
    cursor = EventCursor(10, gap_timeout=10.0)
    assert cursor.accept([11, 13], now=0.0) == {11, 13}
    assert cursor.missing() == [12]
    assert cursor.accept([13], now=1.0) == set()
    assert cursor.accept([12, 14], now=2.0) == {12, 14}
    assert cursor.missing() == []


def test_cursor_gives_up_on_ids_that_never_commit() -> None:
    cursor = EventCursor(0, gap_timeout=5.0)
    cursor.accept([3], now=0.0)
    assert cursor.missing() == [1, 2]
    cursor.accept([], now=6.0)
    assert cursor.missing() == []


async def _tailer(app: FastAPI, seen: list[ChannelEvent]) -> EventTailer:
    async def handle(events: list[ChannelEvent]) -> None:
        seen.extend(events)

    tailer = EventTailer(state_of(app).db, handle, poll_interval=0.01, retention=60.0)
    async with state_of(app).db.read() as session:
        tailer.cursor.high = int(
            (await session.execute(select(func.max(StreamEvent.id)))).scalar() or 0
        )
    return tailer


async def _insert(app: FastAPI, event_id: int, *, age: float = 0.0) -> None:
    async with state_of(app).db.write() as session:
        await session.execute(
            insert(StreamEvent).values(
                id=event_id,
                channel="public",
                event="update",
                payload='{"status_id": 1}',
                created_at=utcnow() - dt.timedelta(seconds=age),
            )
        )


async def test_event_committed_late_with_a_lower_id_is_still_delivered(app: FastAPI) -> None:
    seen: list[ChannelEvent] = []
    tailer = await _tailer(app, seen)
    base = tailer.cursor.high + 1000
    await _insert(app, base + 2)
    for event in await tailer.poll():
        seen.append(event)
    await _insert(app, base + 1)  # its transaction committed after the later id was read
    for event in await tailer.poll():
        seen.append(event)
    assert [event.id for event in seen] == [base + 2, base + 1]
    assert seen[0].payload == {"status_id": 1}
    assert await tailer.poll() == []


async def test_prune_drops_old_rows_but_keeps_the_newest(app: FastAPI) -> None:
    seen: list[ChannelEvent] = []
    tailer = await _tailer(app, seen)
    base = tailer.cursor.high + 1000
    await _insert(app, base + 1, age=600)
    await _insert(app, base + 2, age=600)
    await _insert(app, base + 3, age=1)
    await tailer.prune()
    async with state_of(app).db.read() as session:
        left = list((await session.scalars(select(StreamEvent.id))).all())
    assert base + 1 not in left and base + 2 not in left
    assert base + 3 in left

    await _insert(app, base + 4, age=600)
    await tailer.prune()
    async with state_of(app).db.read() as session:
        newest = (await session.execute(select(func.max(StreamEvent.id)))).scalar()
    assert newest == base + 4  # the newest row stays, so ids are never handed out again


async def test_an_event_for_many_readers_is_handed_on_for_those_listened_to(
    app: FastAPI,
) -> None:
    seen: list[ChannelEvent] = []
    tailer = await _tailer(app, seen)
    tailer.listened = {"user:2", "user:5"}.__contains__
    async with state_of(app).db.write() as session:
        await publish_to_accounts(session, [1, 2, 3, 5], "update", {"status_id": 7})
        publish(session, "public", "update", {"status_id": 7})
        await publish_to_accounts(session, [4, 6], "update", {"status_id": 8})
    await tailer.handle(await tailer.poll())
    assert [(event.channel, event.payload) for event in seen] == [
        ("user:2", {"status_id": 7}),
        ("user:5", {"status_id": 7}),
        ("public", {"status_id": 7}),
    ]
    # Without a filter every reader's stream gets it.
    assert [channel for channel, _payload in addressed_channels("users", {"accounts": [4, 6]})] == [
        "user:4",
        "user:6",
    ]
