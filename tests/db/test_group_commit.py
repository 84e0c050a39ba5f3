"""Group commit: concurrent writes share a transaction; each fails alone and answers after the
commit."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from fastapi import FastAPI
from sqlalchemy import bindparam, insert, select
from sqlalchemy.ext.asyncio import AsyncConnection

from tests.conftest import Person
from townsquare.db.base import UTCDateTime, utcnow
from townsquare.db.group_commit import GroupCommit, group_commit
from townsquare.state import state_of
from townsquare.statuses.page_reads import rows_on_driver
from townsquare.streaming.models import StreamEvent
from townsquare.streaming.publish import publish


@pytest.fixture
async def grouped(app: FastAPI) -> AsyncIterator[GroupCommit]:
    grouped = GroupCommit(state_of(app).db)
    yield grouped
    await grouped.close()


async def _channels(app: FastAPI) -> set[str]:
    async with state_of(app).db.read() as session:
        rows = await session.scalars(
            select(StreamEvent.channel).where(StreamEvent.channel.like("grouped:%"))
        )
        return set(rows.all())


async def _write(grouped: GroupCommit, name: str, *, fail: bool = False) -> None:
    async with grouped.write() as session:
        publish(session, f"grouped:{name}", "test", {})
        await session.flush()
        if fail:
            raise ValueError(name)


async def test_writes_waiting_together_share_one_commit(app: FastAPI, grouped: GroupCommit) -> None:
    state = state_of(app)
    # Held while the writes start, so they all wait for the same turn.
    async with grouped._turn:
        writes = [asyncio.create_task(_write(grouped, str(n))) for n in range(5)]
        await asyncio.sleep(0)
    await asyncio.gather(*writes)
    assert await _channels(app) == {f"grouped:{n}" for n in range(5)}
    if state.db.is_sqlite:
        assert (grouped.groups, grouped.writes) == (1, 5)


async def test_a_failing_write_rolls_back_alone(app: FastAPI, grouped: GroupCommit) -> None:
    async with grouped._turn:
        writes = [
            asyncio.create_task(_write(grouped, "kept")),
            asyncio.create_task(_write(grouped, "failed", fail=True)),
            asyncio.create_task(_write(grouped, "also kept")),
        ]
        await asyncio.sleep(0)
    outcomes = await asyncio.gather(*writes, return_exceptions=True)
    assert outcomes[0] is None and outcomes[2] is None
    assert isinstance(outcomes[1], ValueError)
    assert await _channels(app) == {"grouped:kept", "grouped:also kept"}


_INSERT_EVENT = insert(StreamEvent).values(
    channel=bindparam("channel"),
    event="test",
    payload=bindparam("payload"),
    created_at=bindparam("created_at", value=utcnow(), type_=UTCDateTime()),
)


async def _write_driver(grouped: GroupCommit, name: str, *, fail: bool = False) -> None:
    async with grouped.write_driver() as connection:
        rows = await rows_on_driver(connection)
        for number in range(2):
            await rows(_INSERT_EVENT, {"channel": f"grouped:{name}", "payload": str(number)})
        if fail:
            raise ValueError(name)


async def test_driver_writes_share_the_group_and_fail_alone(
    app: FastAPI, grouped: GroupCommit
) -> None:
    state = state_of(app)
    async with grouped._turn:
        writes = [
            asyncio.create_task(_write_driver(grouped, "driver kept")),
            asyncio.create_task(_write(grouped, "session kept")),
            asyncio.create_task(_write_driver(grouped, "driver failed", fail=True)),
            asyncio.create_task(_write_driver(grouped, "driver also kept")),
        ]
        await asyncio.sleep(0)
    outcomes = await asyncio.gather(*writes, return_exceptions=True)
    assert [type(outcome) for outcome in outcomes] == [
        type(None),
        type(None),
        ValueError,
        type(None),
    ]
    assert await _channels(app) == {
        "grouped:driver kept",
        "grouped:session kept",
        "grouped:driver also kept",
    }
    if state.db.is_sqlite:
        assert (grouped.groups, grouped.writes) == (1, 3)


async def _run_driver(grouped: GroupCommit, name: str, *, fail: bool = False) -> str:
    async def work(connection: AsyncConnection) -> str:
        rows = await rows_on_driver(connection)
        for number in range(2):
            await rows(_INSERT_EVENT, {"channel": f"grouped:{name}", "payload": str(number)})
        if fail:
            raise ValueError(name)
        return name

    return await grouped.run_driver(work)


async def test_queued_driver_works_share_the_group_fail_alone_and_answer_after_the_commit(
    app: FastAPI, grouped: GroupCommit
) -> None:
    state = state_of(app)
    async with grouped._turn:
        writes = [
            asyncio.create_task(_run_driver(grouped, "run kept")),
            asyncio.create_task(_write(grouped, "session kept")),
            asyncio.create_task(_run_driver(grouped, "run failed", fail=True)),
            asyncio.create_task(_run_driver(grouped, "run also kept")),
        ]
        await asyncio.sleep(0)
    outcomes = await asyncio.gather(*writes, return_exceptions=True)
    assert outcomes[0] == "run kept" and outcomes[1] is None and outcomes[3] == "run also kept"
    assert isinstance(outcomes[2], ValueError)
    assert await _channels(app) == {
        "grouped:run kept",
        "grouped:session kept",
        "grouped:run also kept",
    }
    if state.db.is_sqlite:
        assert grouped.writes == 3
    # A work queued after the group committed starts the next one.
    assert await _run_driver(grouped, "later") == "later"
    assert "grouped:later" in await _channels(app)


async def test_a_group_whose_only_write_failed_ends_and_the_next_one_commits(
    app: FastAPI, grouped: GroupCommit
) -> None:
    with pytest.raises(ValueError):
        await _write(grouped, "failed", fail=True)
    await _write(grouped, "next")
    assert await _channels(app) == {"grouped:next"}


async def test_a_write_is_committed_when_its_block_ends(app: FastAPI, grouped: GroupCommit) -> None:
    await _write(grouped, "durable")
    # Another connection sees it at once: the block ended after the commit, not before.
    assert await _channels(app) == {"grouped:durable"}


async def test_concurrent_posts_are_grouped_and_all_stored(app: FastAPI, alice: Person) -> None:
    state = state_of(app)
    grouped = group_commit(state.extras, state.db)
    answers = await asyncio.gather(
        *(alice.client.post("/api/v1/statuses", json={"status": f"post {n}"}) for n in range(8))
    )
    assert all(answer.status_code == 200 for answer in answers)
    for answer in answers:
        shown = await alice.client.get(f"/api/v1/statuses/{answer.json()['id']}")
        assert shown.status_code == 200
    if state.db.is_sqlite:
        # Their fan-out jobs' leases and batches join the groups too.
        assert grouped.writes >= 8


async def test_waiting_for_the_write_lock_leaves_the_loop_free(
    app: FastAPI, grouped: GroupCommit
) -> None:
    db = state_of(app).db
    if not db.is_sqlite:
        pytest.skip("the write lock is SQLite's")
    async with db.write() as session:
        publish(session, "grouped:first", "test", {})
        await session.flush()  # this transaction now holds the write lock
        waiting = asyncio.create_task(_write(grouped, "second"))
        # The grouped write waits for the lock on a thread: this coroutine keeps running.
        for _ in range(50):
            await asyncio.sleep(0)
        assert not waiting.done()
    await waiting
    assert await _channels(app) == {"grouped:first", "grouped:second"}


async def test_another_workers_group_waits_for_this_one_without_holding_the_loop(
    app: FastAPI, grouped: GroupCommit
) -> None:
    db = state_of(app).db
    other = GroupCommit(db)  # another worker's: a connection of its own
    try:
        async with grouped.write() as session:
            publish(session, "grouped:this", "test", {})
            await session.flush()
            waiting = asyncio.create_task(_write(other, "other"))
            for _ in range(50):
                await asyncio.sleep(0)
            if db.is_sqlite:
                assert not waiting.done()
        await waiting
    finally:
        if other.engine is not None:
            await other.engine.dispose()
    assert await _channels(app) == {"grouped:this", "grouped:other"}
