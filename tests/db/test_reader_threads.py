"""Whole reads on threads of their own (SQLite): what they return and raise, that the event loop
keeps turning while one runs, and that closing the database stops the threads."""

from __future__ import annotations

import asyncio
import sys
import threading
import time

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from townsquare.db.engine import READER_THREADS, Database
from townsquare.statuses.cache import VersionedCache


@pytest.fixture
def db(words_db: Database) -> Database:
    return words_db


async def test_a_read_runs_whole_on_another_thread_and_returns_its_result(db: Database) -> None:
    async def read(session: AsyncSession) -> tuple[list[str], int]:
        words = await session.scalars(text("SELECT word FROM words ORDER BY word"))
        return list(words), threading.get_ident()

    words, thread = await db.read_apart(read)
    assert words == ["square", "town"]
    assert thread != threading.get_ident()


async def test_an_error_in_a_read_reaches_the_caller_and_the_threads_go_on(db: Database) -> None:
    async def broken(session: AsyncSession) -> None:
        await session.execute(text("SELECT * FROM no_such_table"))

    async def count(session: AsyncSession) -> int | None:
        return await session.scalar(text("SELECT count(*) FROM words"))

    with pytest.raises(Exception, match="no_such_table"):
        await db.read_apart(broken)
    assert await db.read_apart(count) == 2


async def test_the_event_loop_keeps_turning_while_a_read_runs(db: Database) -> None:
    async def slow(session: AsyncSession) -> int | None:
        # A statement that takes a while, as a search over many rows would.
        return await session.scalar(
            text(
                "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 3000000)"
                " SELECT count(*) FROM n"
            )
        )

    ticks = 0

    async def tick() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0.005)

    ticker = asyncio.create_task(tick())
    started = time.monotonic()
    assert await db.read_apart(slow) == 3_000_000
    took = time.monotonic() - started
    ticker.cancel()
    # Held by the statement, the loop would have turned about once.
    assert took > 0.05
    assert ticks >= took / 0.005 / 4


async def test_reads_run_side_by_side_and_closing_stops_the_threads(db: Database) -> None:
    async def which(session: AsyncSession) -> str:
        await session.scalar(text("SELECT 1"))
        return threading.current_thread().name

    names = await asyncio.gather(*(db.read_apart(which) for _ in range(20)))
    assert set(names) <= {f"townsquare-reader-{i}" for i in range(READER_THREADS)}
    threads = [t for t in threading.enumerate() if t.name.startswith("townsquare-reader-")]
    assert threads
    await db.dispose()
    assert not any(thread.is_alive() for thread in threads)
    with pytest.raises(RuntimeError):
        await db.read_apart(which)


def test_the_entity_cache_takes_use_from_two_threads_at_once() -> None:
    # One entry for two keys: nearly every put evicts the entry another thread just found.
    cache: VersionedCache[int] = VersionedCache(1)
    failures: list[BaseException] = []

    def churn(offset: int) -> None:
        try:
            for i in range(200_000):
                key = (i + offset) % 2
                if cache.get(key, 1) is None:
                    cache.put(key, 1, key)
        except BaseException as error:
            failures.append(error)

    threads = [threading.Thread(target=churn, args=(n,)) for n in range(4)]
    # The threads take turns at the interpreter's lock as often as it lets them.
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        sys.setswitchinterval(interval)
    assert failures == []
    assert len(cache) <= 1
