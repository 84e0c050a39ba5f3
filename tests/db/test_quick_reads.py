"""Quick reads on PostgreSQL: a pooled connection the server closed is replaced when it is
taken, although connections in steady use are taken without a round trip to test them."""

from __future__ import annotations

import asyncio

from sqlalchemy import text

from tests.postgres_server import TableReset
from townsquare.db.engine import QUICK_READ_PING_AFTER_SECONDS, Database


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
