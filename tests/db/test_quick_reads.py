"""Quick reads on PostgreSQL: a pooled connection the server closed is replaced when it is
taken, although connections in steady use are taken without a round trip to test them; both
for the engine's and for the driver's own connections of page reads."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import func, select, text

from tests.postgres_server import TableReset
from townsquare.cluster.failover import is_failover_error
from townsquare.db.engine import QUICK_READ_PING_AFTER_SECONDS, Database
from townsquare.statuses.page_reads import driver_reads, page_read

_BACKEND_PID = select(func.pg_backend_pid())


async def _server_process(db: Database) -> int:
    async with db.quick_read_engine.connect() as connection:
        pid: int = (await connection.execute(text("SELECT pg_backend_pid()"))).scalar_one()
        return pid


async def test_a_connection_the_server_closed_is_replaced_when_taken(
    postgres_tables: TableReset,
) -> None:
    server = postgres_tables.server
    db = Database(server.url(postgres_tables.database), pool_size=1)
    try:
        first = await _server_process(db)
        assert await _server_process(db) == first
        await server.execute(f"SELECT pg_terminate_backend({first})")
        # Taken again well before it would be tested with a round trip.
        await asyncio.sleep(QUICK_READ_PING_AFTER_SECONDS / 5)
        assert await _server_process(db) != first
    finally:
        await db.dispose()


async def _driver_process(db: Database) -> int:
    async with driver_reads(db) as rows:
        found = await rows(_BACKEND_PID, {})
        pid: int = found[0][0]
        return pid


async def test_a_driver_connection_the_server_closed_is_replaced_when_taken(
    postgres_tables: TableReset,
) -> None:
    server = postgres_tables.server
    db = Database(server.url(postgres_tables.database), pool_size=1)
    try:
        first = await _driver_process(db)
        assert await _driver_process(db) == first
        await server.execute(f"SELECT pg_terminate_backend({first})")
        await asyncio.sleep(QUICK_READ_PING_AFTER_SECONDS / 5)
        assert await _driver_process(db) != first
    finally:
        await db.dispose()


async def test_a_driver_connection_idle_a_while_is_tested_and_kept(
    postgres_tables: TableReset,
) -> None:
    # Tested with a round trip when taken after a while, and kept when it answers: a new
    # connection would cost the server a process and the driver its type introspection.
    db = Database(postgres_tables.server.url(postgres_tables.database), pool_size=1)
    try:
        first = await _driver_process(db)
        await asyncio.sleep(QUICK_READ_PING_AFTER_SECONDS * 1.2)
        assert await _driver_process(db) == first
    finally:
        await db.dispose()


async def test_a_driver_connection_lost_while_taken_fails_as_a_failover(
    postgres_tables: TableReset,
) -> None:
    server = postgres_tables.server
    db = Database(server.url(postgres_tables.database), pool_size=1)
    try:
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
    finally:
        await db.dispose()


async def test_json_read_on_a_driver_connection_is_decoded_as_on_the_engine(
    postgres_tables: TableReset,
) -> None:
    # A profile's fields, read with a token on the driver's own connection, must come back as
    # the list the engine gives, not as JSON text.
    db = Database(postgres_tables.server.url(postgres_tables.database), pool_size=1)
    statement = select(func.json_build_array(func.json_build_object("name", "Site")))
    try:
        async with driver_reads(db) as rows:
            found = await rows.typed(statement, {})
        async with db.quick_read_engine.connect() as connection:
            expected = (await connection.execute(statement)).scalar_one()
        assert found[0][0] == expected == [{"name": "Site"}]
    finally:
        await db.dispose()
