"""Requests that wait out a failover: what counts as "the database is changing hands", and what
a client gets when it does not come back in time."""

from __future__ import annotations

import asyncpg  # type: ignore[import-untyped]
import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from townsquare.app import create_app
from townsquare.cluster.failover import is_failover_error
from townsquare.config import Settings

from ..postgres_server import free_port


async def test_a_refused_connection_is_a_failover() -> None:
    port = free_port()  # nothing listens there
    with pytest.raises(OSError) as refused:
        await asyncpg.connect(host="127.0.0.1", port=port, user="postgres", timeout=2)
    assert is_failover_error(refused.value)
    engine = create_async_engine(f"postgresql+asyncpg://postgres@127.0.0.1:{port}/x")
    try:
        with pytest.raises(Exception) as wrapped:
            async with engine.connect() as connection:
                await connection.execute(text("SELECT 1"))
        assert is_failover_error(wrapped.value)
    finally:
        await engine.dispose()


def test_ordinary_errors_are_not_failovers() -> None:
    assert not is_failover_error(ValueError("bad input"))
    assert not is_failover_error(FileNotFoundError("media/missing.png"))
    assert not is_failover_error(KeyError("id"))


async def test_a_read_answers_503_when_the_database_stays_away() -> None:
    port = free_port()
    settings = Settings(
        database_url=f"postgresql+asyncpg://postgres@127.0.0.1:{port}/townsquare",
        database_failover_wait=1.0,
        secret_key="test",
    )
    app = create_app(settings, migrate=False)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        response = await client.get("/api/v1/timelines/public")
    assert response.status_code == 503
    assert response.json() == {"error": "The database is unavailable, try again shortly"}
    assert response.headers["Retry-After"] == "5"
