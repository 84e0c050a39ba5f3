"""The home page's statements, compiled once per dialect and run on the driver's own connection.

A page runs half a dozen small statements through indexes. Through the ORM each cost several
times what the database took to run it (a cache key computed, a result and its rows built,
types processed, a hop into a greenlet and back); here each is compiled once to SQL text and
run on the connection underneath the session (sqlite3 on the event loop's thread, or asyncpg),
its rows used as the driver returns them. What is read this way serves as versions to compare
with and ids to look up; anything rendered from a row that changed is read again through the
ORM.

A list of ids is one parameter (:func:`in_ids`): a JSON array read with ``json_each`` on SQLite,
an array on PostgreSQL, so each statement has one text whatever the length of its lists.
"""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, Protocol

import orjson
from sqlalchemy import BigInteger, ColumnElement, String, bindparam
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.expression import ClauseElement, Executable
from sqlalchemy.sql.visitors import InternalTraversal
from sqlalchemy.types import Boolean, TypeDecorator, TypeEngine

from townsquare.db.engine import Database


class IdList(TypeDecorator[list[int]]):
    """A list of ids as one parameter: JSON text on SQLite, ``BIGINT[]`` on PostgreSQL."""

    impl = String
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "postgresql":
            return dialect.type_descriptor(ARRAY(BigInteger))
        return dialect.type_descriptor(String())

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        ids = list(value or ())
        if dialect.name == "postgresql":
            return ids
        return orjson.dumps(ids).decode()


def ids_param(name: str) -> Any:
    return bindparam(name, type_=IdList())


class _InIds(ColumnElement[bool]):
    """``column IN (ids)`` with the ids in one :class:`IdList` parameter."""

    inherit_cache = True
    type = Boolean()
    # A comparison already: not to be written ``(...) = 1`` where booleans are integers, which
    # would keep SQLite from reading it through an index.
    _is_implicitly_boolean = True
    _traverse_internals = [
        ("column", InternalTraversal.dp_clauseelement),
        ("ids", InternalTraversal.dp_clauseelement),
        ("negated", InternalTraversal.dp_boolean),
    ]

    def __init__(
        self, column: ColumnElement[Any], ids: ClauseElement, *, negated: bool = False
    ) -> None:
        self.column = column
        self.ids = ids
        self.negated = negated

    def _negate(self) -> ColumnElement[Any]:
        return _InIds(self.column, self.ids, negated=not self.negated)


def in_ids(column: Any, name: str) -> ColumnElement[bool]:
    return _InIds(column, ids_param(name))


@compiles(_InIds, "sqlite")
def _in_ids_sqlite(element: _InIds, compiler: SQLCompiler, **kw: Any) -> str:
    column = compiler.process(element.column, **kw)
    operator = "NOT IN" if element.negated else "IN"
    ids = compiler.process(element.ids, **kw)
    return f"{column} {operator} (SELECT value FROM json_each({ids}))"


@compiles(_InIds)
def _in_ids(element: _InIds, compiler: SQLCompiler, **kw: Any) -> str:
    column = compiler.process(element.column, **kw)
    operator = "<> ALL" if element.negated else "= ANY"
    return f"{column} {operator} ({compiler.process(element.ids, **kw)})"


@dataclass(frozen=True, slots=True)
class _Compiled:
    sql: str
    names: tuple[str, ...]
    defaults: dict[str, Any]
    processors: dict[str, Callable[[Any], Any]]
    # What turns each column of a row into what the ORM would give (None: used as it is).
    results: tuple[Callable[[Any], Any] | None, ...]

    def typed(self, row: Sequence[Any]) -> tuple[Any, ...]:
        return tuple(
            value if process is None or value is None else process(value)
            for process, value in zip(self.results, row, strict=True)
        )

    def arguments(self, values: dict[str, Any]) -> list[Any]:
        arguments = []
        for name in self.names:
            value = values[name] if name in values else self.defaults[name]
            processor = self.processors.get(name)
            arguments.append(value if processor is None else processor(value))
        return arguments


_compiled: dict[tuple[int, str], tuple[Executable, _Compiled]] = {}


def _compile(statement: Executable, dialect: Dialect) -> _Compiled:
    key = (id(statement), dialect.name)
    found = _compiled.get(key)
    if found is not None and found[0] is statement:
        return found[1]
    compiled = statement.compile(dialect=dialect)  # type: ignore[attr-defined]
    # Lists given in the statement itself (``visibility IN ('public', 'unlisted')``) are
    # written out once; the parameters given with each run are single values or IdLists.
    expanded = compiled.construct_expanded_state(
        {name: bind.value for name, bind in compiled.binds.items()}
    )
    names = tuple(expanded.positiontup or ())
    processors = {}
    for name in names:
        bind = compiled.binds.get(name)
        processor = None if bind is None else bind.type._cached_bind_processor(dialect)
        if processor is not None:
            processors[name] = processor
    results = tuple(
        column.type._cached_result_processor(dialect, None) for column in compiled._result_columns
    )
    result = _Compiled(expanded.statement, names, dict(expanded.parameters), processors, results)
    # Keeping the statement alive keeps its id from being reused by another.
    _compiled[key] = (statement, result)
    return result


class Rows(Protocol):
    """Runs a statement built once; returns its rows as the driver gives them.

    ``round_trips``: whether each statement is a round trip to a server (PostgreSQL), so that
    a page is better read in as few statements as can be; on SQLite a statement is a call
    into the library, and narrower statements cost less than one wide one."""

    round_trips: bool

    async def __call__(
        self, statement: Executable, values: dict[str, Any]
    ) -> list[Sequence[Any]]: ...


class DriverRows(Rows, Protocol):
    async def typed(self, statement: Executable, values: dict[str, Any]) -> list[tuple[Any, ...]]:
        """The rows with each value as the ORM would give it (dates, booleans, JSON)."""
        ...


class _SQLiteRows:
    round_trips = False

    def __init__(self, connection: sqlite3.Connection, dialect: Dialect) -> None:
        self._connection = connection
        self._dialect = dialect

    def begin(self) -> None:
        self._connection.execute("BEGIN")

    async def __call__(self, statement: Executable, values: dict[str, Any]) -> list[Sequence[Any]]:
        compiled = _compile(statement, self._dialect)
        rows: list[Sequence[Any]] = self._connection.execute(
            compiled.sql, compiled.arguments(values)
        ).fetchall()
        return rows

    async def typed(self, statement: Executable, values: dict[str, Any]) -> list[tuple[Any, ...]]:
        compiled = _compile(statement, self._dialect)
        rows = self._connection.execute(compiled.sql, compiled.arguments(values)).fetchall()
        return [compiled.typed(row) for row in rows]


class _PostgresRows:
    round_trips = True

    def __init__(self, connection: Any, dialect: Dialect) -> None:
        self._connection = connection
        self._dialect = dialect

    def begin(self) -> None:
        # Quick reads on PostgreSQL run in autocommit: each statement sees its own snapshot, as
        # it would in a READ COMMITTED transaction, without BEGIN and ROLLBACK round trips.
        pass

    async def __call__(self, statement: Executable, values: dict[str, Any]) -> list[Sequence[Any]]:
        compiled = _compile(statement, self._dialect)
        rows: list[Sequence[Any]] = await self._connection.fetch(
            compiled.sql, *compiled.arguments(values)
        )
        return rows

    async def typed(self, statement: Executable, values: dict[str, Any]) -> list[tuple[Any, ...]]:
        compiled = _compile(statement, self._dialect)
        rows = await self._connection.fetch(compiled.sql, *compiled.arguments(values))
        return [compiled.typed(row) for row in rows]


class PageRead:
    """One page's reads: statements on the driver's connection (:attr:`rows`), and an ORM
    session, opened only when something has to be rendered (:meth:`session`)."""

    def __init__(self, rows: Rows, sessions: Callable[[], AsyncSession]) -> None:
        self.rows = rows
        self._sessions = sessions
        self._session: AsyncSession | None = None

    def session(self) -> AsyncSession:
        if self._session is None:
            self._session = self._sessions()
        return self._session


@asynccontextmanager
async def _reading(rows: Rows, sessions: Callable[[], AsyncSession]) -> AsyncIterator[PageRead]:
    """A :class:`PageRead` on ``rows``, its ORM session (if one was opened) closed after."""
    read = PageRead(rows, sessions)
    try:
        yield read
    finally:
        if read._session is not None:
            await read._session.close()


@asynccontextmanager
async def page_read(db: Database) -> AsyncIterator[PageRead]:
    """The reads of one page. On SQLite one read transaction on a connection of the process's
    :class:`~townsquare.db.engine.InlineReaders` (through the engine, its pool and BEGIN cost
    more than the rest of a cached page's reads); an ORM session, when something has to be
    rendered, reads on a quick-read connection of its own, which sees the same rows or newer
    ones (a template made from a newer row is kept under the older version, and made again
    on the next page that reads the newer). On PostgreSQL one connection of the process's
    :class:`~townsquare.db.engine.DriverReaders`, in autocommit, and an ORM session on the
    quick-read engine (each of their statements sees its own snapshot). An in-memory SQLite
    database has one connection of the quick-read engine, which the ORM session shares.
    No ORM session unless one is needed, which saved a third of a cached page's CPU."""
    drivers = db.driver_readers
    if drivers is not None:
        driver = await drivers.take()
        reusable = False
        try:
            async with _reading(
                _PostgresRows(driver, db.quick_read_engine.dialect),
                lambda: AsyncSession(bind=db.quick_read_engine, expire_on_commit=False),
            ) as read:
                yield read
            reusable = True
        except Exception:
            reusable = True
            raise
        finally:
            drivers.give_back(driver, reusable=reusable)
        return
    readers = db.inline_readers
    if readers is None:
        async with db.quick_read_engine.connect() as connection:
            rows = await rows_on_driver(connection)
            rows.begin()
            async with _reading(
                rows, lambda: AsyncSession(bind=connection, expire_on_commit=False)
            ) as read:
                yield read
        return
    sqlite = readers.take()
    try:
        sqlite.execute("BEGIN")
        async with _reading(
            _SQLiteRows(sqlite, db.quick_read_engine.dialect),
            lambda: AsyncSession(bind=db.quick_read_engine, expire_on_commit=False),
        ) as read:
            yield read
    finally:
        readers.give_back(sqlite)


@asynccontextmanager
async def driver_reads(db: Database) -> AsyncIterator[DriverRows]:
    """Statements on the driver's connection, each on its own: for one statement (a token
    looked up), no transaction around it. See :func:`page_read`."""
    drivers = db.driver_readers
    if drivers is not None:
        driver = await drivers.take()
        reusable = False
        try:
            yield _PostgresRows(driver, db.quick_read_engine.dialect)
            reusable = True
        except Exception:
            reusable = True
            raise
        finally:
            drivers.give_back(driver, reusable=reusable)
        return
    readers = db.inline_readers
    if readers is None:
        async with db.quick_read_engine.connect() as connection:
            yield await rows_on_driver(connection)
        return
    sqlite = readers.take()
    try:
        yield _SQLiteRows(sqlite, db.quick_read_engine.dialect)
    finally:
        readers.give_back(sqlite)


async def rows_on_driver(connection: AsyncConnection) -> _SQLiteRows | _PostgresRows:
    """Statements on the driver's connection underneath ``connection`` (its transaction, if
    any, is theirs too)."""
    raw = await connection.get_raw_connection()
    dialect = connection.dialect
    driver = raw.driver_connection
    if dialect.name == "sqlite":
        inline = getattr(driver, "sqlite_connection", None)
        if isinstance(inline, sqlite3.Connection):
            return _SQLiteRows(inline, dialect)
        raise RuntimeError("quick reads on SQLite run on an inline connection")
    return _PostgresRows(driver, dialect)
