"""Quick reads on PostgreSQL: a pooled connection the server closed is replaced when it is
taken, although connections in steady use are taken without a round trip to test them; both
for the engine's and for the driver's own connections of page reads."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import func, select, text

from tests.postgres_server import TableReset
from townsquare.cluster.failover import is_failover_error
from townsquare.db.engine import QUICK_READ_PING_AFTER_SECONDS, Database
from townsquare.statuses.page_reads import driver_reads, page_read

_BACKEND_PID = select(func.pg_backend_pid())


@pytest.fixture
async def db(postgres_tables: TableReset) -> AsyncIterator[Database]:
    """A database on the test server with pools of one connection."""
    database = Database(postgres_tables.server.url(postgres_tables.database), pool_size=1)
    yield database
    await database.dispose()


async def _server_process(db: Database) -> int:
    async with db.quick_read_engine.connect() as connection:
        pid: int = (await connection.execute(text("SELECT pg_backend_pid()"))).scalar_one()
        return pid


async def test_a_connection_the_server_closed_is_replaced_when_taken(
    postgres_tables: TableReset, db: Database
) -> None:
    server = postgres_tables.server
    first = await _server_process(db)
    assert await _server_process(db) == first
    await server.execute(f"SELECT pg_terminate_backend({first})")
    # Taken again well before it would be tested with a round trip.
    await asyncio.sleep(QUICK_READ_PING_AFTER_SECONDS / 5)
    assert await _server_process(db) != first


async def _driver_process(db: Database) -> int:
    async with driver_reads(db) as rows:
        found = await rows(_BACKEND_PID, {})
        pid: int = found[0][0]
        return pid


async def test_a_driver_connection_the_server_closed_is_replaced_when_taken(
    postgres_tables: TableReset, db: Database
) -> None:
    server = postgres_tables.server
    first = await _driver_process(db)
    assert await _driver_process(db) == first
    await server.execute(f"SELECT pg_terminate_backend({first})")
    await asyncio.sleep(QUICK_READ_PING_AFTER_SECONDS / 5)
    assert await _driver_process(db) != first


async def test_a_driver_connection_idle_a_while_is_tested_and_kept(
    db: Database,
) -> None:
    # Tested with a round trip when taken after a while, and kept when it answers: a new
    # connection would cost the server a process and the driver its type introspection.
    first = await _driver_process(db)
    await asyncio.sleep(QUICK_READ_PING_AFTER_SECONDS * 1.2)
    assert await _driver_process(db) == first


async def test_a_burst_of_reads_opens_driver_connections_one_at_a_time(
    postgres_tables: TableReset,
) -> None:
    db = Database(postgres_tables.server.url(postgres_tables.database), pool_size=4)
    drivers = db.driver_readers
    assert drivers is not None
    opening = 0
    most_at_once = 0
    open_connection = drivers._open

    async def counted_open(asyncpg: Any) -> Any:
        nonlocal opening, most_at_once
        opening += 1
        most_at_once = max(most_at_once, opening)
        try:
            return await open_connection(asyncpg)
        finally:
            opening -= 1

    drivers._open = counted_open  # type: ignore[method-assign]

    async def read() -> int:
        async with driver_reads(db) as rows:
            found = await rows(select(func.pg_backend_pid(), func.pg_sleep(0.05)), {})
            pid: int = found[0][0]
            return pid

    try:
        pids = await asyncio.gather(*(read() for _ in range(12)))
        assert most_at_once == 1
        # Every read was served, on no more connections than the pool's size.
        assert 1 <= len(set(pids)) <= 4
    finally:
        await db.dispose()


async def test_a_read_cancelled_while_waiting_for_a_driver_connection_leaves_it_usable(
    db: Database,
) -> None:
    drivers = db.driver_readers
    assert drivers is not None
    held = await drivers.take()
    waiting = asyncio.ensure_future(drivers.take())
    await asyncio.sleep(0.05)
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    drivers.give_back(held, reusable=True)
    # The one place is free again, and the connection given back is the one taken.
    assert await asyncio.wait_for(_driver_process(db), 5) > 0
    assert await asyncio.wait_for(_driver_process(db), 5) > 0


async def test_a_driver_connection_lost_while_taken_fails_as_a_failover(
    postgres_tables: TableReset, db: Database
) -> None:
    server = postgres_tables.server
    with pytest.raises(Exception) as raised:
        async with page_read(db) as read:
            pid = (await read.rows(_BACKEND_PID, {}))[0][0]
            await server.execute(f"SELECT pg_terminate_backend({pid})")
            await asyncio.sleep(0.1)
            await read.rows(_BACKEND_PID, {})
    assert is_failover_error(raised.value)
    # The next read has a connection of its own, and the ORM session reads too.
    async with page_read(db) as read:
        assert (await read.rows(_BACKEND_PID, {}))[0][0] != pid
        assert (await read.session().execute(_BACKEND_PID)).scalar_one() > 0


async def test_json_read_on_a_driver_connection_is_decoded_as_on_the_engine(
    db: Database,
) -> None:
    # A profile's fields, read with a token on the driver's own connection, must come back as
    # the list the engine gives, not as JSON text.
    statement = select(func.json_build_array(func.json_build_object("name", "Site")))
    async with driver_reads(db) as rows:
        found = await rows.typed(statement, {})
    async with db.quick_read_engine.connect() as connection:
        expected = (await connection.execute(statement)).scalar_one()
    assert found[0][0] == expected == [{"name": "Site"}]
