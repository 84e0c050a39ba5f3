"""Engines and sessions.

On SQLite every write runs in ``BEGIN IMMEDIATE`` through a one-connection pool per process, so
writers queue instead of failing with "database is locked" when a read transaction would upgrade;
reads run in parallel on their own pool (WAL mode). On PostgreSQL both are one ordinary pool.

SQLite also has *quick* reads (:meth:`Database.quick_read`): short, index-bound statements (a
token looked up, a home-timeline page) run on the event loop's own thread instead of being handed
to a connection thread and back, which cost more than the statements themselves (each hop wakes
a thread and takes the GIL twice). A reader in WAL mode never waits for a lock, so such a
statement cannot stall the loop behind a writer; anything that may scan (search, exports) stays
on :meth:`Database.read`, or runs whole on a thread of its own (:meth:`Database.read_apart`:
townsquare/db/reader_threads.py). On PostgreSQL a quick read runs without a transaction of its
own (autocommit): in PostgreSQL's READ COMMITTED every statement sees its own snapshot anyway, and
the BEGIN and ROLLBACK around the pool's liveness check were two round trips of a page's eight.
"""

from __future__ import annotations

import asyncio
import json
import re
import sqlite3
import time
from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiosqlite
from aiosqlite.context import contextmanager
from sqlalchemy import event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.pool import AsyncAdaptedQueuePool

from townsquare.db.reader_threads import ReaderThreads, ReadFn, Result

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


# A WAL reader waits for a lock only in rare moments (the WAL being reset or recovered); on the
# event loop's thread such a wait holds every request of the worker, so it is cut short: the
# request fails with "database is locked" rather than the worker stalling for ten seconds.
INLINE_BUSY_TIMEOUT_MS = 500


class _InlineConnection(aiosqlite.Connection):
    """An aiosqlite connection that runs every call on the calling thread (the event loop's).

    For statements known to be short only: while one runs, the loop waits for it.
    """

    def __init__(self, database: str) -> None:
        # We emit BEGIN ourselves, so the driver must not (isolation_level=None).
        super().__init__(
            lambda: sqlite3.connect(
                database,
                timeout=INLINE_BUSY_TIMEOUT_MS / 1000,
                isolation_level=None,
                check_same_thread=False,
            ),
            64,
        )

    async def _open(self) -> _InlineConnection:
        self._connection = self._connector()
        return self

    async def _execute(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        if not self._running or self._connection is None:
            raise ValueError("Connection closed")
        return fn(*args, **kwargs)

    @property
    def sqlite_connection(self) -> sqlite3.Connection | None:
        """The sqlite3 connection underneath, for statements run without the driver's layers
        (townsquare/statuses/page_reads.py)."""
        return self._connection

    def stop(self) -> None:  # type: ignore[override]
        self._running = False
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    async def close(self) -> None:
        self.stop()


class _PrefetchingCursor(aiosqlite.Cursor):
    """A cursor whose statement and rows make one trip to the connection's thread: aiosqlite
    makes four (the cursor made, the statement, its rows, the cursor closed), and under load
    each waited for a turn of the busy event loop to come back. The cursor is made and closed
    on the calling thread: neither touches the database file."""

    _rows: deque[Any] | None = None

    async def execute(self, sql: str, parameters: Any = None) -> _PrefetchingCursor:
        parameters = [] if parameters is None else parameters
        self._rows = await self._execute(self._run, sql, parameters)  # type: ignore[no-untyped-call]
        return self

    def _run(self, sql: str, parameters: Any) -> deque[Any] | None:
        cursor = self._cursor
        cursor.execute(sql, parameters)
        return deque(cursor.fetchall()) if cursor.description else None

    async def fetchone(self) -> Any:
        if self._rows is None:
            return await super().fetchone()
        return self._rows.popleft() if self._rows else None

    async def fetchmany(self, size: int | None = None) -> list[Any]:
        if self._rows is None:
            return list(await super().fetchmany(size))
        rows = self._rows
        return [rows.popleft() for _ in range(min(size or self.arraysize, len(rows)))]

    async def fetchall(self) -> list[Any]:
        if self._rows is None:
            return list(await super().fetchall())
        rows, self._rows = list(self._rows), deque()
        return rows

    async def close(self) -> None:
        self._rows = None
        self._cursor.close()


class _ThreadConnection(aiosqlite.Connection):
    """An aiosqlite connection (statements on a thread of its own) whose statements each make
    one trip to that thread (:class:`_PrefetchingCursor`). On a reader, BEGIN and ROLLBACK run
    on the calling thread: a deferred BEGIN takes no lock, and ending a transaction that wrote
    nothing writes nothing; so does a writer's ROLLBACK outside a transaction."""

    def __init__(self, database: str, *, reader: bool) -> None:
        # We emit BEGIN ourselves, so the driver must not (isolation_level=None).
        super().__init__(
            lambda: sqlite3.connect(
                database, timeout=10, isolation_level=None, check_same_thread=False
            ),
            64,
        )
        self.reader = reader

    @contextmanager
    async def cursor(self) -> aiosqlite.Cursor:
        return _PrefetchingCursor(self, self._conn.cursor())

    async def rollback(self) -> None:
        # (The pool also rolls back each connection given back, after a commit: nothing to do.)
        if self.reader or not self._conn.in_transaction:
            self._conn.rollback()
        else:
            await super().rollback()

    @property
    def sqlite_connection(self) -> sqlite3.Connection:
        return self._conn


class InlineReaders:
    """sqlite3 connections of one process for the statements of quick reads run on the driver's
    connection (a home page, a token looked up: townsquare/statuses/page_reads.py), taken and
    given back on the event loop's thread without the engine's pool, whose check-out and
    check-in cost as much as the rest of a cached page's reads. Opened as the quick-read
    engine's are: same pragmas, the same short busy timeout."""

    def __init__(self, database: str, size: int) -> None:
        self.database = database
        self.size = size
        self._idle: list[sqlite3.Connection] = []
        self._closed = False

    def take(self) -> sqlite3.Connection:
        if self._idle:
            return self._idle.pop()
        connection = sqlite3.connect(
            self.database,
            timeout=INLINE_BUSY_TIMEOUT_MS / 1000,
            isolation_level=None,
            check_same_thread=False,
        )
        for pragma in SQLITE_PRAGMAS:
            connection.execute(pragma)
        connection.execute(f"PRAGMA busy_timeout={INLINE_BUSY_TIMEOUT_MS}")
        return connection

    def give_back(self, connection: sqlite3.Connection) -> None:
        if connection.in_transaction:
            connection.rollback()
        if self._closed or len(self._idle) >= self.size:
            connection.close()
        else:
            self._idle.append(connection)

    def close(self) -> None:
        self._closed = True
        while self._idle:
            self._idle.pop().close()


class DriverReaders:
    """asyncpg connections of one process for the statements of quick reads run on the
    driver's connection on PostgreSQL (townsquare/statuses/page_reads.py), taken and given back
    without the engine: its check-out and check-in, through greenlets and the pool's events,
    cost more than a cached page's statements took of the worker's CPU. Opened as the
    quick-read engine's are (the same server and settings, in autocommit); as many at most as
    the engine's pool holds, a read beyond that waiting for one to be given back.

    One is opened at a time: a read that finds none idle while another is being opened waits
    for whichever comes first, one given back or the next turn to open. A new connection
    costs the server a process and the driver a look at the catalog for its types before its
    first page (about 15 ms in all); a burst of reads used to open as many at once, and the
    worker and the server stalled on them together for 150-250 ms.

    As with the engine's (see ``_test_when_taken``): a connection the server closed is known
    closed to the driver and is replaced when taken; one given back a while ago is tested with
    a round trip first. A statement on a connection lost since it was taken fails with the
    driver's error, and the request is replayed once the database answers
    (townsquare/cluster/failover.py)."""

    def __init__(self, dialect: Any, url: str, size: int) -> None:
        _, options = dialect.create_connect_args(make_url(url))
        # (Options of SQLAlchemy's adapter, not of the driver.)
        for name in ("prepared_statement_cache_size", "prepared_statement_name_func"):
            options.pop(name, None)
        options["timeout"] = 5
        options["server_settings"] = {"plan_cache_mode": "force_generic_plan"}
        self._options = options
        # JSON columns read as the engine's connections read them: decoded (SQLAlchemy sets
        # this codec up on each connection it opens; a raw connection would give text).
        self._json_loads = getattr(dialect, "_json_deserializer", None) or json.loads
        self._idle: list[tuple[Any, float]] = []
        self._free = asyncio.Semaphore(size)
        self._opening = False
        # Reads waiting for a connection given back or for their turn to open one.
        self._waiting: deque[asyncio.Future[None]] = deque()
        self._closed = False

    async def take(self) -> Any:
        import asyncpg  # type: ignore[import-untyped]

        await self._free.acquire()
        try:
            while True:
                connection = await self._take_idle()
                if connection is not None:
                    return connection
                if not self._opening:
                    self._opening = True
                    try:
                        return await self._open(asyncpg)
                    finally:
                        self._opening = False
                        self._wake_one()
                waiter = asyncio.get_running_loop().create_future()
                self._waiting.append(waiter)
                try:
                    await waiter
                except BaseException:
                    if waiter.done() and not waiter.cancelled():
                        self._wake_one()  # woken as it was cancelled: the turn passes on
                    raise
        except BaseException:
            self._free.release()
            raise

    async def _take_idle(self) -> Any:
        """The connection given back last that is still open, or None."""
        while self._idle:
            connection, given_back_at = self._idle.pop()
            if connection.is_closed():
                continue
            if time.monotonic() - given_back_at < QUICK_READ_PING_AFTER_SECONDS:
                return connection
            try:
                # (``execute(";")`` fails in the driver on the empty answer, which threw
                # away every connection that sat idle, and each new one introspected its
                # types again: bursts of reopened connections stalled both workers.)
                await connection.fetchrow(";")
                return connection
            except BaseException as error:
                connection.terminate()
                if not isinstance(error, Exception):
                    raise
        return None

    def _wake_one(self) -> None:
        while self._waiting:
            waiter = self._waiting.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return

    async def _open(self, asyncpg: Any) -> Any:
        connection = await asyncpg.connect(**self._options)
        try:
            for name in ("json", "jsonb"):
                await connection.set_type_codec(
                    name,
                    encoder=str,
                    decoder=self._json_loads,
                    schema="pg_catalog",
                    format="text",
                )
        except BaseException:
            connection.terminate()
            raise
        return connection

    def give_back(self, connection: Any, *, reusable: bool) -> None:
        """``reusable``: False when its statement may still be running (the read was cancelled)."""
        self._free.release()
        if not reusable or self._closed or connection.is_closed():
            connection.terminate()
        else:
            self._idle.append((connection, time.monotonic()))
        self._wake_one()

    async def close(self) -> None:
        self._closed = True
        while self._idle:
            connection, _ = self._idle.pop()
            await connection.close()


def _sqlite_engine(
    url: str, *, immediate: bool, pool_size: int, inline: bool = False
) -> AsyncEngine:
    database = make_url(url).database or ":memory:"

    async def connect() -> aiosqlite.Connection:
        if inline:
            inline_connection = _InlineConnection(database)
            return await inline_connection._open()
        connection = _ThreadConnection(database, reader=not immediate)
        await connection  # the thread started, the database opened on it
        return connection

    engine = create_async_engine(
        url,
        poolclass=AsyncAdaptedQueuePool,
        pool_size=pool_size,
        max_overflow=0,
        pool_timeout=60,
        async_creator=connect,
    )

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        for pragma in SQLITE_PRAGMAS:
            cursor.execute(pragma)
        if inline:
            cursor.execute(f"PRAGMA busy_timeout={INLINE_BUSY_TIMEOUT_MS}")
        cursor.close()

    begin = "BEGIN IMMEDIATE" if immediate else "BEGIN"

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(connection: Any) -> None:
        if inline or not immediate:
            # Straight to sqlite3, on this thread: through the engine, the statement cost more
            # than the rest of a cached page's reads, and a deferred BEGIN takes no lock (see
            # _ThreadConnection). A page's reads may have begun it already
            # (townsquare/statuses/page_reads.py) before an ORM session joins them.
            sqlite = connection.connection.driver_connection.sqlite_connection
            if not sqlite.in_transaction:
                sqlite.execute(begin)
            return
        connection.exec_driver_sql(begin)

    return engine


def _postgres_engine(url: str, *, pool_size: int, autocommit: bool = False) -> AsyncEngine:
    # pre-ping: after a failover every pooled connection points at a dead or demoted server;
    # each is tested when taken from the pool and replaced by a fresh one. (Outside a
    # transaction the test is one round trip; inside one, BEGIN and ROLLBACK make it three.)
    # A connection attempt gives up after a few seconds, so a vanished server costs a retry,
    # not a hung request.
    options: dict[str, Any] = {}
    connect_args: dict[str, Any] = {"timeout": 5}
    max_overflow = pool_size
    if autocommit:
        options["isolation_level"] = "AUTOCOMMIT"
        # No connections beyond the pool's: one opened for a burst is closed when given back
        # to a full pool, and the next burst opens another. A new connection is a new server
        # process that loads its catalog caches and plans every statement again (a home page's
        # takes about 3 ms), the work of many pages; under a saturating load the workers
        # opened 250 a quarter of a minute. A quick read waits for a pooled connection
        # instead: its statements are short, and the pool has more connections than the
        # server has cores to run them.
        max_overflow = 0
        # Quick reads are a few statements, each prepared once per connection and run with
        # different ids. Left to choose, PostgreSQL kept planning them anew on every run (0.3-0.8
        # ms a statement, more than running it: 0.05-0.2 ms on the seeded instance); the plan
        # made without the values uses the same indexes.
        connect_args["server_settings"] = {"plan_cache_mode": "force_generic_plan"}
    engine = create_async_engine(
        url,
        pool_size=pool_size,
        max_overflow=max_overflow,
        pool_pre_ping=not autocommit,
        connect_args=connect_args,
        **options,
    )
    if autocommit:
        _test_when_taken(engine)
    return engine


# Threads for whole reads on SQLite, per worker: searches run one at a time on each; more
# threads than cores would only take turns at the interpreter's lock.
READER_THREADS = 2

# A quick-read connection given back less than this long ago is taken without a round trip to
# test it (see ``_test_when_taken``).
QUICK_READ_PING_AFTER_SECONDS = 1.0


def _test_when_taken(engine: AsyncEngine) -> None:
    """The pre-ping of quick reads, without its round trip for a connection in steady use.

    The pre-ping cost a round trip per page (a tenth of a millisecond of a worker's CPU, and
    the server's). A connection the server closed (it died, restarted or was demoted) is known
    closed to the driver without asking; it is replaced when taken, as the pre-ping would.
    One that sat in the pool for a while is still tested with a round trip. A statement on a
    connection lost since it was taken fails; the request is replayed once the database
    answers (townsquare/cluster/failover.py), on another connection."""

    @event.listens_for(engine.sync_engine, "checkin")
    def _given_back(_dbapi_connection: Any, record: Any) -> None:
        record.info["given_back_at"] = time.monotonic()

    @event.listens_for(engine.sync_engine, "checkout")
    def _taken(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        driver = record.driver_connection
        if driver is None or driver.is_closed():
            raise DisconnectionError("the server closed the connection")
        given_back_at = record.info.get("given_back_at")
        # (Never given back: opened for this checkout.)
        if given_back_at is not None and (
            time.monotonic() - given_back_at >= QUICK_READ_PING_AFTER_SECONDS
        ):
            try:
                dbapi_connection.ping()
            except Exception as error:
                raise DisconnectionError("the connection did not answer") from error


# Writes after which what a token resolves to may have changed: see ``Database.auth_generation``.
_AUTH_WRITE = re.compile(
    r"^\s*(?:UPDATE|DELETE\s+FROM)\s+\"?(?:oauth_tokens|oauth_apps|accounts)\b", re.IGNORECASE
)
# An update of an account's counters alone (every post, boost and follow makes one) changes
# nothing a token resolves to, and must not empty the token cache each time.
_COUNTERS_UPDATE = re.compile(
    r"^\s*UPDATE\s+\"?accounts\"?\s+SET\s+(?P<columns>.*?)\s+WHERE\b", re.IGNORECASE | re.DOTALL
)
_COUNTER_COLUMN = re.compile(r"\"?(\w+)\"?\s*=")
COUNTER_COLUMNS = frozenset(
    {"statuses_count", "followers_count", "following_count", "last_status_at"}
)


def is_auth_write(statement: str) -> bool:
    """Whether ``statement`` may change what a token resolves to (see ``auth_generation``)."""
    if not _AUTH_WRITE.match(statement):
        return False
    counters = _COUNTERS_UPDATE.match(statement)
    if counters is None:
        return True
    columns = {name.lower() for name in _COUNTER_COLUMN.findall(counters["columns"])}
    return not columns or not columns <= COUNTER_COLUMNS


class Database:
    """The process's engines and the two kinds of session the application uses.

    ``auth_generation`` moves on whenever this process writes to tokens, applications or
    accounts: when the statement runs and again once its transaction has committed. Whatever
    was read about a token under an older generation (townsquare/api/auth.py) is not used.
    """

    def __init__(self, url: str, *, pool_size: int = 10, read_url: str = "") -> None:
        self.url = url
        self.dialect = make_url(url).get_backend_name()
        if self.dialect == "sqlite":
            database = make_url(url).database or ":memory:"
            on_disk = database != ":memory:"
            if on_disk:
                Path(database).parent.mkdir(parents=True, exist_ok=True)
            self.write_engine = _sqlite_engine(url, immediate=True, pool_size=1)
            self.read_engine = _sqlite_engine(url, immediate=False, pool_size=pool_size)
            self.quick_read_engine = _sqlite_engine(
                url, immediate=False, pool_size=pool_size, inline=True
            )
            # (An in-memory database is one per connection: it has no quick reads of its own.)
            self.inline_readers: InlineReaders | None = (
                InlineReaders(database, pool_size) if on_disk else None
            )
            self.driver_readers: DriverReaders | None = None
            self.reader_threads: ReaderThreads | None = (
                ReaderThreads(
                    lambda: _sqlite_engine(url, immediate=False, pool_size=1, inline=True),
                    READER_THREADS,
                )
                if on_disk
                else None
            )
        else:
            self.write_engine = _postgres_engine(url, pool_size=pool_size)
            # Reads may go to standbys (through a router such as HAProxy); a standby that is
            # gone is noticed by the pre-ping and the next connection goes to another one.
            self.read_engine = (
                _postgres_engine(read_url, pool_size=pool_size) if read_url else self.write_engine
            )
            self.quick_read_engine = _postgres_engine(
                read_url or url, pool_size=pool_size, autocommit=True
            )
            self.inline_readers = None
            self.driver_readers = DriverReaders(
                self.quick_read_engine.dialect, read_url or url, pool_size
            )
            # (asyncpg's statements run on the event loop's thread without hand-offs.)
            self.reader_threads = None
        self.auth_generation = 0
        self.count_auth_writes(self.write_engine)

        self._write_sessions = async_sessionmaker(self.write_engine, expire_on_commit=False)
        self._read_sessions = async_sessionmaker(self.read_engine, expire_on_commit=False)
        self._quick_read_sessions = async_sessionmaker(
            self.quick_read_engine, expire_on_commit=False
        )

    def count_auth_writes(self, engine: AsyncEngine) -> None:
        """Move ``auth_generation`` on whenever ``engine`` runs a write that may change what a
        token resolves to (see ``is_auth_write``)."""

        @event.listens_for(engine.sync_engine, "before_cursor_execute")
        def _on_execute(*args: Any) -> None:
            if is_auth_write(args[2]):
                self.auth_generation += 1

    @property
    def is_sqlite(self) -> bool:
        return self.dialect == "sqlite"

    @asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncSession]:
        """A session whose work commits when the block ends, or rolls back on an exception."""
        generation = self.auth_generation
        async with self._write_sessions() as session, session.begin():
            yield session
        if self.auth_generation != generation:
            # Committed now: a token lookup that began before the commit read the old rows.
            self.auth_generation += 1

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncSession]:
        async with self._read_sessions() as session:
            yield session
            # Rows read here are used after the block; a rollback would expire them.
            session.expunge_all()
            await session.rollback()

    @asynccontextmanager
    async def quick_read(self) -> AsyncIterator[AsyncSession]:
        """A read session for short statements that use an index throughout (see the module's
        docstring); on PostgreSQL, each of its statements in a transaction of its own."""
        async with self._quick_read_sessions() as session:
            yield session
            # Closing expunges the rows read (they stay usable) and the pool rolls back the
            # connection: the ORM rollback on top of that is not needed.

    async def read_apart(self, read: ReadFn[Result]) -> Result:
        """``read(session)``, a whole read that makes many statements (a search and its
        rendering), run where it costs the event loop least: on SQLite on a thread of its own
        (townsquare/db/reader_threads.py says what it may touch), elsewhere as any read."""
        if self.reader_threads is not None:
            return await self.reader_threads.run(read)
        async with self.read() as session:
            return await read(session)

    async def ping(self) -> bool:
        try:
            async with self.read_engine.connect() as connection:
                await connection.execute(text("SELECT 1"))
            return True
        except Exception:
            return False

    async def dispose(self) -> None:
        if self.reader_threads is not None:
            await self.reader_threads.close()
        if self.inline_readers is not None:
            self.inline_readers.close()
        if self.driver_readers is not None:
            await self.driver_readers.close()
        await self.write_engine.dispose()
        if self.read_engine is not self.write_engine:
            await self.read_engine.dispose()
        if self.quick_read_engine is not self.read_engine:
            await self.quick_read_engine.dispose()
