"""A bound on the password hashes one worker computes at once."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator


class HashingBusy(Exception):
    """No password check could start in time: the sign-in is refused with 503, cheaply."""


class HashGate:
    """At most ``slots`` password hashes at once per worker, and a short, bounded wait for one.

    A password hash takes tens of milliseconds of CPU by design. However well spread a
    credential-stuffing run is over addresses and accounts, this keeps it from using more than
    ``slots`` threads' worth of CPU; attempts beyond that are refused at once instead of
    piling up in the thread pool and running long after the attack stopped.
    """

    def __init__(self, slots: int, *, max_waiting: int, deadline: float) -> None:
        self._free = asyncio.Semaphore(max(1, slots))
        self.max_waiting = max_waiting
        self.deadline = deadline
        self.waiting = 0
        self.refused = 0

    @contextlib.asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        if self.waiting >= self.max_waiting:
            self.refused += 1
            raise HashingBusy
        self.waiting += 1
        try:
            async with asyncio.timeout(self.deadline):
                await self._free.acquire()
        except TimeoutError:
            self.refused += 1
            raise HashingBusy from None
        finally:
            self.waiting -= 1
        try:
            yield
        finally:
            self._free.release()
