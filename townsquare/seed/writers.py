"""Bulk writers: executemany on SQLite, COPY on PostgreSQL, behind one small Protocol."""

from __future__ import annotations

import datetime as dt
import sqlite3
from collections.abc import Iterable, Iterator
from itertools import islice
from typing import Any, Protocol

import asyncpg  # type: ignore[import-untyped]
from sqlalchemy.engine import make_url

from townsquare.db.base import UTCDateTime
from townsquare.seed.rows import TableRows

BATCH_ROWS = 50_000


def chunks(rows: Iterable[tuple[Any, ...]], size: int) -> Iterator[list[tuple[Any, ...]]]:
    iterator = iter(rows)
    while chunk := list(islice(iterator, size)):
        yield chunk


class BulkWriter(Protocol):
    async def insert(self, table: TableRows, rows: Iterable[tuple[Any, ...]]) -> int: ...

    async def scalar(self, sql: str) -> Any: ...

    async def finish(self) -> None: ...

    async def close(self) -> None: ...


class SqliteWriter:
    """Writes through the standard library's sqlite3: one transaction per batch.

    ``fast`` turns the journal and syncing off while seeding, which is quicker but leaves a
    corrupt database if the process dies half-way (start again from an empty data dir then).
    """

    def __init__(self, path: str, *, fast: bool) -> None:
        self.fast = fast
        self.connection = sqlite3.connect(path, isolation_level=None)
        pragmas = ["foreign_keys=OFF", "cache_size=-262144", "temp_store=MEMORY"]
        if fast:
            pragmas += ["journal_mode=OFF", "synchronous=OFF"]
        else:
            pragmas += ["journal_mode=WAL", "synchronous=NORMAL"]
        for pragma in pragmas:
            self.connection.execute(f"PRAGMA {pragma}")

    async def insert(self, table: TableRows, rows: Iterable[tuple[Any, ...]]) -> int:
        # SQLAlchemy stores timestamps on SQLite as naive UTC text; write the same.
        dates = [
            index
            for index, name in enumerate(table.columns)
            if isinstance(table.table.columns[name].type, UTCDateTime)
        ]
        placeholders = ", ".join("?" for _ in table.columns)
        columns = ", ".join(f'"{name}"' for name in table.columns)
        statement = f'INSERT INTO "{table.name}" ({columns}) VALUES ({placeholders})'
        written = 0
        for chunk in chunks(rows, BATCH_ROWS):
            if dates:
                chunk = [_sqlite_dates(row, dates) for row in chunk]
            self.connection.execute("BEGIN")
            self.connection.executemany(statement, chunk)
            self.connection.execute("COMMIT")
            written += len(chunk)
        return written

    async def scalar(self, sql: str) -> Any:
        row = self.connection.execute(sql).fetchone()
        return row[0] if row else None

    async def finish(self) -> None:
        self.connection.execute("ANALYZE")
        if self.fast:
            self.connection.execute("PRAGMA journal_mode=WAL")

    async def close(self) -> None:
        self.connection.close()


def _sqlite_dates(row: tuple[Any, ...], indexes: list[int]) -> tuple[Any, ...]:
    values = list(row)
    for index in indexes:
        value = values[index]
        if isinstance(value, dt.datetime):
            values[index] = (
                value.astimezone(dt.UTC).replace(tzinfo=None).isoformat(" ", "microseconds")
            )
    return tuple(values)


class PostgresWriter:
    """Writes with COPY through one asyncpg connection, a transaction per batch."""

    def __init__(self, connection: asyncpg.Connection) -> None:
        self.connection = connection

    @classmethod
    async def connect(cls, url: str, *, fast: bool) -> PostgresWriter:
        parsed = make_url(url)
        connection = await asyncpg.connect(
            host=parsed.host,
            port=parsed.port,
            user=parsed.username,
            password=parsed.password,
            database=parsed.database,
        )
        if fast:
            await connection.execute("SET synchronous_commit = off")
        return cls(connection)

    async def insert(self, table: TableRows, rows: Iterable[tuple[Any, ...]]) -> int:
        written = 0
        for chunk in chunks(rows, BATCH_ROWS):
            async with self.connection.transaction():
                await self.connection.copy_records_to_table(
                    table.name, records=chunk, columns=list(table.columns)
                )
            written += len(chunk)
        return written

    async def scalar(self, sql: str) -> Any:
        return await self.connection.fetchval(sql)

    async def finish(self) -> None:
        await self.connection.execute("ANALYZE")

    async def close(self) -> None:
        await self.connection.close()


async def open_writer(database_url: str, *, fast: bool) -> BulkWriter:
    parsed = make_url(database_url)
    if parsed.get_backend_name() == "sqlite":
        if not parsed.database:
            raise ValueError("seeding needs an SQLite database file")
        return SqliteWriter(parsed.database, fast=fast)
    return await PostgresWriter.connect(database_url, fast=fast)
