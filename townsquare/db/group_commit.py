"""Group commit: the posts a worker writes at the same time share one transaction and one commit.

On SQLite a commit waits for the disk (``synchronous=FULL`` syncs the WAL: about 4 ms on the
benchmark machine) while it holds the database's one write lock, so a transaction per post
bounds posting at about 250/s for the whole machine however much CPU is left. Here a post that
arrives while this worker's transaction is open, or while the previous one is committing, joins
the next one:

- each post runs in a SAVEPOINT of the shared transaction, one at a time (they share its
  session), so a post that fails rolls back alone and leaves nothing written;
- the first post of a group schedules its commit behind the posts already waiting, so a group
  holds whatever arrived while the one before it was on the disk;
- each request waits for its group's commit before it answers: nothing is acknowledged before
  it is durable, and if the commit fails every post of the group fails with it.

The grouped transactions have a connection of their own whose statements run on the event
loop's thread (see ``_GroupConnection``): a post's statements then take no round trip through
a connection thread and back, each of which waited for a turn of a busy loop while the
transaction, and so every other post, waited for it. Waiting for the write lock and for the
disk still happens on a thread.

Effects that wait for a commit (job runners and stream tailers woken) happen once per group.
On PostgreSQL a grouped write is an ordinary write session: the server groups commits itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
import sqlite3
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, TypeVar, cast

from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.pool import AsyncAdaptedQueuePool

from townsquare.db.engine import SQLITE_PRAGMAS, Database, _InlineConnection

log = logging.getLogger(__name__)

_T = TypeVar("_T")

# How often a worker checkpoints the write-ahead log at most (see ``_Checkpointer``).
CHECKPOINT_SECONDS = 0.5


class _GroupConnection(_InlineConnection):
    """A write connection whose statements run on the event loop's thread, except the two that
    wait: BEGIN (for the database's write lock, which the other workers' transactions hold in
    turn) and COMMIT (for the disk). Those run on a thread, so the loop serves other requests
    meanwhile; between them the transaction holds the lock, and its statements (a post's
    handful of inserts and updates by key) cannot wait for anything.

    Before BEGIN the thread also takes an exclusive ``flock`` on ``<database>.write-lock``, held
    until the transaction ends: the workers' grouped transactions queue for it in the kernel and
    the next one starts as soon as the last one ends, where SQLite's busy handler would poll,
    sleeping longer and longer (up to 100 ms) between attempts while the other worker takes the
    lock again and again.
    """

    def __init__(self, database: str) -> None:
        super().__init__(database)
        self._lock_file: int | None = None
        if database != ":memory:":
            self._lock_file = os.open(f"{database}.write-lock", os.O_RDWR | os.O_CREAT, 0o644)
        self._locked = False

    def _lock(self) -> None:
        if self._lock_file is not None and not self._locked:
            fcntl.flock(self._lock_file, fcntl.LOCK_EX)
            self._locked = True

    def _unlock(self) -> None:
        if self._lock_file is not None and self._locked:
            self._locked = False
            fcntl.flock(self._lock_file, fcntl.LOCK_UN)

    def _begin(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        self._lock()
        try:
            return fn(*args, **kwargs)
        except BaseException:
            self._unlock()
            raise

    def _end(self, fn: Any) -> Any:
        try:
            return fn()
        finally:
            self._unlock()

    async def _execute(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        if not self._running or self._connection is None:
            raise ValueError("Connection closed")
        if fn == self._connection.commit:
            return await asyncio.to_thread(self._end, fn)
        if fn == self._connection.rollback:
            return self._end(fn)
        if args and isinstance(args[0], str) and args[0].startswith("BEGIN"):
            return await asyncio.to_thread(self._begin, fn, *args, **kwargs)
        return fn(*args, **kwargs)

    def stop(self) -> None:
        super().stop()
        if self._lock_file is not None:
            # Closing the file releases the lock, whatever state the transaction was left in.
            os.close(self._lock_file)
            self._lock_file = None
            self._locked = False


def _group_engine(db: Database) -> AsyncEngine:
    database = make_url(db.url).database or ":memory:"

    async def connect() -> _GroupConnection:
        connection = _GroupConnection(database)
        await connection._open()
        return connection

    engine = create_async_engine(
        db.url,
        poolclass=AsyncAdaptedQueuePool,
        pool_size=1,
        max_overflow=0,
        pool_timeout=60,
        async_creator=connect,
    )

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        for pragma in SQLITE_PRAGMAS:
            cursor.execute(pragma)
        # Checkpoints run off the posting path (see ``_Checkpointer``).
        cursor.execute("PRAGMA wal_autocheckpoint=0")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(connection: Any) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")

    db.count_auth_writes(engine)
    return engine


class _Checkpointer:
    """Copies the write-ahead log into the database file, on a connection and a thread of its
    own, at most every ``CHECKPOINT_SECONDS``, after a grouped commit.

    SQLite's automatic checkpoint runs inside the commit that fills the log past 1,000 pages,
    where it writes those pages to the database file and syncs it while that transaction still
    holds the write lock: every other write of both workers waited for it. A passive
    checkpoint takes no write lock (writers go on appending to the log meanwhile), and a commit
    is durable once the log is synced, so it can come later.
    """

    def __init__(self, database: str) -> None:
        self._database = database
        self._connection: sqlite3.Connection | None = None
        self._running: asyncio.Task[None] | None = None
        self._last = 0.0

    def after_commit(self) -> None:
        now = time.monotonic()
        if self._running is not None or now - self._last < CHECKPOINT_SECONDS:
            return
        self._last = now
        self._running = asyncio.create_task(self._checkpoint())

    async def _checkpoint(self) -> None:
        try:
            await asyncio.to_thread(self._run)
        except sqlite3.Error:
            log.warning("WAL checkpoint failed", exc_info=True)
        finally:
            self._running = None

    def _run(self) -> None:
        if self._connection is None:
            self._connection = sqlite3.connect(self._database, check_same_thread=False)
            for pragma in SQLITE_PRAGMAS:
                self._connection.execute(pragma)
        self._connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()

    async def close(self) -> None:
        if self._running is not None:
            with contextlib.suppress(Exception):
                await self._running
        if self._connection is not None:
            self._connection.close()
            self._connection = None


@dataclass(eq=False)
class _Group:
    """One shared transaction: its session, and the outcome of its commit."""

    session: AsyncSession
    committed: asyncio.Future[None]
    # Database.auth_generation when the group began (see ``_close``).
    generation: int
    closing: asyncio.Task[None] | None = None
    members: int = field(default=0)


class GroupCommit:
    """The grouped writes of one process (see the module's docstring)."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.engine = _group_engine(db) if db.is_sqlite else None
        database = make_url(db.url).database if db.is_sqlite else None
        self._checkpointer = (
            _Checkpointer(database) if database and database != ":memory:" else None
        )
        self._sessions = async_sessionmaker(self.engine, expire_on_commit=False)
        # Held while a post writes into the open group, and by the group's closing while it
        # takes the group away from the posts that come after.
        self._turn = asyncio.Lock()
        self._open: _Group | None = None
        # Works waiting for :meth:`_drain` (see :meth:`run_driver`).
        self._queued: deque[
            tuple[Callable[[AsyncConnection], Awaitable[Any]], asyncio.Future[Any]]
        ] = deque()
        self._draining: asyncio.Task[None] | None = None
        self.groups = 0
        self.writes = 0

    async def close(self) -> None:
        if self.engine is not None:
            await self.engine.dispose()
        if self._checkpointer is not None:
            await self._checkpointer.close()

    @asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncSession]:
        """A session whose work commits when the block ends (with others' in the same group),
        or rolls back alone on an exception. The block ends after the commit."""
        if self.engine is None:
            async with self.db.write() as session:
                yield session
            return
        async with self._joined() as group, group.session.begin_nested():
            yield group.session

    @asynccontextmanager
    async def write_driver(self) -> AsyncIterator[AsyncConnection]:
        """As :meth:`write`, for statements run on the driver's connection underneath (see
        ``townsquare/statuses/page_reads.py``) instead of through an ORM session: on SQLite
        the group's connection, in a SAVEPOINT of its transaction; on PostgreSQL a transaction
        of its own, begun on the driver (asyncpg). Statements made through SQLAlchemy on the
        connection given would not be part of it. Such statements bypass
        ``Database.count_auth_writes``: they must not change what a token resolves to (an
        account's counters are fine)."""
        if self.engine is None:
            async with self.db.write_engine.connect() as connection:
                # The driver's own transaction: SQLAlchemy's would begin only with a statement
                # of its own, and these statements would each commit alone.
                driver = (await connection.get_raw_connection()).driver_connection
                assert driver is not None
                async with driver.transaction():
                    yield connection
            return
        async with self._joined() as group:
            connection = await group.session.connection()
            raw = await connection.get_raw_connection()
            assert isinstance(raw.driver_connection, _GroupConnection)
            driver = raw.driver_connection.sqlite_connection
            assert driver is not None
            driver.execute("SAVEPOINT grouped_write")
            try:
                yield connection
            except BaseException:
                driver.execute("ROLLBACK TO grouped_write")
                driver.execute("RELEASE grouped_write")
                raise
            driver.execute("RELEASE grouped_write")

    async def run_driver(self, work: Callable[[AsyncConnection], Awaitable[_T]]) -> _T:
        """``work`` run as in :meth:`write_driver`, returning its result after the commit.

        On SQLite the posts queued meanwhile run one after another in the same turn of the
        event loop, each in its savepoint, instead of each waiting for a turn of a busy loop
        while the group's transaction holds the write lock that the other workers wait for."""
        if self.engine is None:
            async with self.write_driver() as connection:
                return await work(connection)
        entered: asyncio.Future[tuple[_Group, Any]] = asyncio.get_running_loop().create_future()
        self._queued.append((work, entered))
        if self._draining is None:
            self._draining = asyncio.create_task(self._drain())
        group, result = await asyncio.shield(entered)
        await asyncio.shield(group.committed)
        return cast(_T, result)

    async def _drain(self) -> None:
        """Runs the queued works of :meth:`run_driver` in this process's open group."""
        try:
            async with self._turn:
                group = self._open_group()
                try:
                    await self._run_queued(group)
                finally:
                    if group.closing is None:
                        group.closing = asyncio.create_task(self._close(group))
        except BaseException as exc:
            # The group could not begin (or was cancelled): the works still queued fail with it.
            failure = exc if isinstance(exc, Exception) else RuntimeError("grouped write not run")
            for _work, entered in self._queued:
                entered.set_exception(failure)
            self._queued.clear()
            if not isinstance(exc, Exception):
                raise
        finally:
            self._draining = None

    async def _run_queued(self, group: _Group) -> None:
        connection = await group.session.connection()
        raw = await connection.get_raw_connection()
        assert isinstance(raw.driver_connection, _GroupConnection)
        driver = raw.driver_connection.sqlite_connection
        assert driver is not None
        while self._queued:
            work, entered = self._queued.popleft()
            driver.execute("SAVEPOINT grouped_write")
            try:
                result = await work(connection)
            except BaseException as exc:
                driver.execute("ROLLBACK TO grouped_write")
                driver.execute("RELEASE grouped_write")
                if isinstance(exc, Exception):
                    entered.set_exception(exc)
                    continue
                entered.cancel()
                raise
            driver.execute("RELEASE grouped_write")
            group.members += 1
            entered.set_result((group, result))

    @asynccontextmanager
    async def _joined(self) -> AsyncIterator[_Group]:
        """This process's open group, joined for one write; the block ends after its commit."""
        async with self._turn:
            group = self._open_group()
            try:
                yield group
                group.members += 1
            finally:
                # Scheduled even when the first post failed: the group's transaction holds the
                # database's write lock until it ends.
                if group.closing is None:
                    group.closing = asyncio.create_task(self._close(group))
        # Shielded: a request given up on still needs its group to end, and others wait on it.
        await asyncio.shield(group.committed)

    def _open_group(self) -> _Group:
        """This process's open group, begun if there is none (taken with ``_turn`` held)."""
        if self._open is None:
            self._open = _Group(
                self._sessions(),
                asyncio.get_running_loop().create_future(),
                self.db.auth_generation,
            )
        return self._open

    async def _close(self, group: _Group) -> None:
        async with self._turn:
            # Posts queued before this point are in; later ones start the next group.
            self._open = None
        try:
            if group.members:
                await group.session.commit()
            else:
                await group.session.rollback()
        except BaseException as exc:
            with contextlib.suppress(Exception):
                await group.session.rollback()
            if not isinstance(exc, Exception):
                group.committed.cancel()
                raise
            group.committed.set_exception(exc)
        else:
            self.groups += 1
            self.writes += group.members
            group.committed.set_result(None)
            if self._checkpointer is not None:
                self._checkpointer.after_commit()
        finally:
            await group.session.close()
            if self.db.auth_generation != group.generation:
                # As Database.write does: a token read before the commit read the old rows.
                self.db.auth_generation += 1


_EXTRAS_KEY = "group_commit"


async def close_group_commit(extras: dict[str, object]) -> None:
    grouped = extras.pop(_EXTRAS_KEY, None)
    if isinstance(grouped, GroupCommit):
        await grouped.close()


def group_commit(extras: dict[str, object], db: Database) -> GroupCommit:
    """The process's group commit, made on first use."""
    grouped = extras.get(_EXTRAS_KEY)
    if not isinstance(grouped, GroupCommit):
        grouped = GroupCommit(db)
        extras[_EXTRAS_KEY] = grouped
    return grouped
