"""Engines and sessions.

On SQLite every write runs in ``BEGIN IMMEDIATE`` through a one-connection pool per process, so
writers queue instead of failing with "database is locked" when a read transaction would upgrade;
reads run in parallel on their own pool (WAL mode). On PostgreSQL both are one ordinary pool.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import event, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.pool import AsyncAdaptedQueuePool

SQLITE_PRAGMAS = (
    "PRAGMA journal_mode=WAL",
    # FULL: a commit that was acknowledged survives a power cut, not only a process crash.
    "PRAGMA synchronous=FULL",
    "PRAGMA foreign_keys=ON",
    "PRAGMA busy_timeout=10000",
    # 8 MB of page cache per connection: a worker holds up to pool size + 1 connections, and
    # the operating system caches the file for all of them.
    "PRAGMA cache_size=-8000",
    "PRAGMA temp_store=MEMORY",
)


def _sqlite_engine(url: str, *, immediate: bool, pool_size: int) -> AsyncEngine:
    engine = create_async_engine(
        url,
        poolclass=AsyncAdaptedQueuePool,
        pool_size=pool_size,
        max_overflow=0,
        pool_timeout=60,
        connect_args={"timeout": 10, "check_same_thread": False},
    )

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # We emit BEGIN ourselves, so the driver must not.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        for pragma in SQLITE_PRAGMAS:
            cursor.execute(pragma)
        cursor.close()

    begin = "BEGIN IMMEDIATE" if immediate else "BEGIN"

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(connection: Any) -> None:
        connection.exec_driver_sql(begin)

    return engine


def _postgres_engine(url: str, *, pool_size: int) -> AsyncEngine:
    # pre-ping: after a failover every pooled connection points at a dead or demoted server;
    # each is tested when taken from the pool and replaced by a fresh one.
    # A connection attempt gives up after a few seconds, so a vanished server costs a retry,
    # not a hung request.
    return create_async_engine(
        url,
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_pre_ping=True,
        connect_args={"timeout": 5},
    )


class Database:
    """The process's engines and the two kinds of session the application uses."""

    def __init__(self, url: str, *, pool_size: int = 10, read_url: str = "") -> None:
        self.url = url
        self.dialect = make_url(url).get_backend_name()
        if self.dialect == "sqlite":
            database = make_url(url).database
            if database and database != ":memory:":
                Path(database).parent.mkdir(parents=True, exist_ok=True)
            self.write_engine = _sqlite_engine(url, immediate=True, pool_size=1)
            self.read_engine = _sqlite_engine(url, immediate=False, pool_size=pool_size)
        else:
            self.write_engine = _postgres_engine(url, pool_size=pool_size)
            # Reads may go to standbys (through a router such as HAProxy); a standby that is
            # gone is noticed by the pre-ping and the next connection goes to another one.
            self.read_engine = (
                _postgres_engine(read_url, pool_size=pool_size) if read_url else self.write_engine
            )
        self._write_sessions = async_sessionmaker(self.write_engine, expire_on_commit=False)
        self._read_sessions = async_sessionmaker(self.read_engine, expire_on_commit=False)

    @property
    def is_sqlite(self) -> bool:
        return self.dialect == "sqlite"

    @asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncSession]:
        """A session whose work commits when the block ends, or rolls back on an exception."""
        async with self._write_sessions() as session, session.begin():
            yield session

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncSession]:
        async with self._read_sessions() as session:
            yield session
            # Rows read here are used after the block; a rollback would expire them.
            session.expunge_all()
            await session.rollback()

    async def ping(self) -> bool:
        try:
            async with self.read_engine.connect() as connection:
                await connection.execute(text("SELECT 1"))
            return True
        except Exception:
            return False

    async def dispose(self) -> None:
        await self.write_engine.dispose()
        if self.read_engine is not self.write_engine:
            await self.read_engine.dispose()
