"""Whole reads run on threads of their own, on SQLite.

A read through the engine's pool hands each step of each statement to the connection's thread
and waits for the event loop to take the answer back: a search, with its rendering, makes about
thirty such hand-offs. When the loop is busy (under a flood, its turns took 50-85 ms) each of
them waits for a turn, and a search that costs 10 ms of CPU took one or two seconds.

Here the whole read, ORM, statements and rendering, runs as one coroutine on a thread with an
event loop and a connection of its own, whose statements run inline on that thread: one hand-off
there and one back. The loop's thread is not held while it runs (the statements release the
interpreter's lock; the rest shares it with the loop as any thread does).

What such a read may touch: its session, and plain data (settings, the worker's caches of
rendered entities, which take concurrent use). Nothing bound to the worker's event loop (locks,
futures, the streaming hub, Redis) and no ORM object from the caller; it returns plain data.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import queue
import threading
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

Result = TypeVar("Result")
ReadFn = Callable[[AsyncSession], Awaitable[Result]]

_Job = tuple[ReadFn[Any], concurrent.futures.Future[Any]]


class ReaderThreads:
    """``size`` threads, started on first use, each running whole reads one at a time."""

    def __init__(self, make_engine: Callable[[], AsyncEngine], size: int) -> None:
        self._make_engine = make_engine
        self.size = size
        self._jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._threads: list[threading.Thread] = []
        self._closed = False
        self._starting = threading.Lock()

    async def run(self, read: ReadFn[Result]) -> Result:
        """``read(session)`` on one of the threads, its session's transaction rolled back after."""
        if self._closed:
            raise RuntimeError("the database is closed")
        self._start()
        future: concurrent.futures.Future[Result] = concurrent.futures.Future()
        self._jobs.put((read, future))
        # Cancelling the caller cancels a read not yet started; one started runs to its end.
        return await asyncio.wrap_future(future)

    def _start(self) -> None:
        if len(self._threads) == self.size:
            return
        with self._starting:
            while len(self._threads) < self.size:
                thread = threading.Thread(
                    target=self._serve, name=f"townsquare-reader-{len(self._threads)}", daemon=True
                )
                thread.start()
                self._threads.append(thread)

    def _serve(self) -> None:
        loop = asyncio.new_event_loop()
        engine = self._make_engine()
        sessions = async_sessionmaker(engine, expire_on_commit=False)

        async def one(read: ReadFn[Any]) -> Any:
            async with sessions() as session:
                try:
                    return await read(session)
                finally:
                    session.expunge_all()
                    await session.rollback()

        try:
            while (job := self._jobs.get()) is not None:
                read, future = job
                if not future.set_running_or_notify_cancel():
                    continue
                try:
                    result = loop.run_until_complete(one(read))
                except BaseException as error:
                    future.set_exception(error)
                else:
                    future.set_result(result)
        finally:
            loop.run_until_complete(engine.dispose())
            loop.close()

    async def close(self) -> None:
        """Let the reads under way finish, then stop the threads and close their connections."""
        self._closed = True
        threads, self._threads = self._threads, []
        for _ in threads:
            self._jobs.put(None)
        for thread in threads:
            await asyncio.to_thread(thread.join)
