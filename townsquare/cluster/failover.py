"""Requests that wait out a database failover instead of failing.

When the PostgreSQL primary dies, every connection to it breaks and no new one succeeds until a
standby has been promoted (about twenty seconds). A request that is safe to run again — a read,
or a write carrying an ``Idempotency-Key`` — is replayed inside the app until the database
answers again or ``database_failover_wait`` runs out; the client only sees a slower answer.
A write without a key is never replayed: its first attempt may have committed.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from townsquare.db.engine import Database

log = logging.getLogger("townsquare.failover")

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# Larger bodies (media uploads) are passed through once rather than held for a replay.
MAX_REPLAYED_BODY = 1024 * 1024
FIRST_PAUSE = 0.05
LONGEST_PAUSE = 0.1
REPLAY_SPREAD = 0.05
REPLAYS_AT_ONCE = 8

# SQLSTATE codes that mean "this server cannot take the statement now", not "it is wrong":
# connection exceptions (class 08), shutdown and start-up (57P01-57P03), a primary turned
# standby (25006 read-only transaction) and a hot standby cancelling a query for recovery.
FAILOVER_SQLSTATES = ("08", "57P01", "57P02", "57P03", "25006", "40001")


def is_failover_error(error: BaseException) -> bool:
    """Whether ``error`` (or what caused it) says the database is changing hands."""
    import asyncpg  # type: ignore[import-untyped]
    from sqlalchemy import exc as sa

    seen: set[int] = set()
    pending: list[BaseException | None] = [error]
    while pending:
        current = pending.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, sa.DBAPIError) and current.connection_invalidated:
            return True
        if isinstance(
            current,
            ConnectionError
            | TimeoutError
            | asyncpg.exceptions.ConnectionDoesNotExistError
            | asyncpg.exceptions.InterfaceError
            | asyncpg.exceptions.PostgresConnectionError,
        ):
            return True
        sqlstate = getattr(current, "sqlstate", None) or getattr(current, "pgcode", None)
        if isinstance(sqlstate, str) and sqlstate.startswith(FAILOVER_SQLSTATES):
            return True
        pending.append(getattr(current, "orig", None))
        pending.append(current.__cause__)
        pending.append(current.__context__)
    return False


def _replayable(scope: Scope) -> bool:
    if scope["method"] in SAFE_METHODS:
        return True
    headers = dict(scope["headers"])
    if b"idempotency-key" not in headers:
        return False
    length = headers.get(b"content-length")
    return length is not None and length.isdigit() and int(length) <= MAX_REPLAYED_BODY


class DatabaseRecovery:
    """Waits, shared by every request of the process, for the database to answer again.

    One probe runs at a time per engine; every waiting request wakes when it succeeds, so a
    failover costs one replay per request rather than a retry storm.
    """

    def __init__(self) -> None:
        self._probes: dict[str, asyncio.Task[None]] = {}

    async def wait(self, db: Database, *, write: bool, deadline: float) -> bool:
        name = "write" if write else "read"
        probe = self._probes.get(name)
        if probe is None or probe.done():
            engine = db.write_engine if write else db.read_engine
            probe = asyncio.create_task(_probe_until_answered(engine, writable=write))
            self._probes[name] = probe
        try:
            await asyncio.wait_for(asyncio.shield(probe), max(0.0, deadline - time.monotonic()))
            return True
        except TimeoutError:
            return False


async def _probe_until_answered(engine: AsyncEngine, *, writable: bool) -> None:
    pause = FIRST_PAUSE
    while True:
        try:
            async with engine.connect() as connection:
                in_recovery = (
                    await connection.execute(text("SELECT pg_is_in_recovery()"))
                ).scalar()
                if writable and in_recovery:
                    raise ConnectionError("still routed to a standby")
            return
        except Exception as error:
            if not is_failover_error(error):
                raise
        await asyncio.sleep(pause)
        pause = min(pause * 1.5, LONGEST_PAUSE)


class FailoverRetryMiddleware:
    """Outermost: a replayed request goes through admission and the rate limits again, but
    holds no admission slot while it waits for the database."""

    def __init__(self, app: ASGIApp, *, wait: float, db: Database) -> None:
        self.app = app
        self.wait = wait
        self.db = db
        self.recovery = DatabaseRecovery()
        # Replays run a few at a time, so the backlog of a failover does not arrive as one burst.
        self.replay_slots = asyncio.Semaphore(REPLAYS_AT_ONCE)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or self.wait <= 0 or not _replayable(scope):
            await self.app(scope, receive, send)
            return
        body = await _read_body(receive)
        deadline = time.monotonic() + self.wait
        write = scope["method"] not in SAFE_METHODS
        if await self._attempt(scope, body, receive, send):
            return
        while True:
            if self.db.is_sqlite or not await self.recovery.wait(
                self.db, write=write, deadline=deadline
            ):
                unavailable = JSONResponse(
                    {"error": "The database is unavailable, try again shortly"},
                    status_code=503,
                    headers={"Retry-After": "5"},
                )
                await unavailable(scope, receive, send)
                return
            await asyncio.sleep(random.uniform(0, REPLAY_SPREAD))
            async with self.replay_slots:
                if await self._attempt(scope, body, receive, send):
                    return

    async def _attempt(self, scope: Scope, body: bytes, receive: Receive, send: Send) -> bool:
        """Run the request once: True when it was answered, False when it may be replayed."""
        started = False

        async def tracked_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, _replay(body, receive), tracked_send)
        except Exception as error:
            if started or not is_failover_error(error):
                raise
            log.warning(
                "database unavailable on %s %s, waiting for it: %s",
                scope["method"],
                scope["path"],
                error.__class__.__name__,
            )
            return False
        return True


async def _read_body(receive: Receive) -> bytes:
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


def _replay(body: bytes, receive: Receive) -> Receive:
    delivered = False

    async def replayed() -> Message:
        nonlocal delivered
        if not delivered:
            delivered = True
            message: dict[str, Any] = {"type": "http.request", "body": body, "more_body": False}
            return message
        return await receive()

    return replayed
