"""Counting requests against limits, behind one small interface.

Every limit in the shield (per token, address, prefix, pass) is a sliding-window counter: the
count of the previous window, weighted by how much of it still overlaps the last ``period``
seconds, plus the count of the current one. :class:`CounterStore` is the interface; the
in-process :class:`MemoryCounterStore` serves one worker, and a shared store (Redis, with the
same check-and-count done in one script) can take its place for a cluster; the methods are
coroutines for that reason, though the in-process store never waits.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class Verdict:
    allowed: bool
    limit: int
    remaining: int
    reset_at: float  # wall-clock seconds when the current window ends

    def retry_after(self, now: float) -> int:
        return max(1, math.ceil(self.reset_at - now))


class CounterStore(Protocol):
    async def acquire(self, key: str, limit: int, period: float) -> Verdict:
        """Count one hit on ``key`` if it stays within ``limit`` per ``period``; say whether."""
        ...

    async def peek(self, key: str, limit: int, period: float) -> Verdict:
        """The state of ``key`` without counting a hit."""
        ...


class MemoryCounterStore:
    """Sliding-window counters in a dict, swept of stale keys as it grows."""

    def __init__(self, *, max_keys: int = 500_000, clock: Callable[[], float] = time.time) -> None:
        # key -> [window index, count in previous window, count in current window, period]
        self._counts: dict[str, list[float]] = {}
        self._max_keys = max_keys
        self._clock = clock

    def __len__(self) -> int:
        return len(self._counts)

    def _window(self, key: str, period: float, now: float) -> tuple[list[float], float]:
        index = now // period
        entry = self._counts.get(key)
        if entry is None:
            if len(self._counts) >= self._max_keys:
                self._sweep(now)
            entry = [index, 0.0, 0.0, period]
            self._counts[key] = entry
        elif entry[0] != index:
            entry[1] = entry[2] if entry[0] == index - 1 else 0.0
            entry[2] = 0.0
            entry[0] = index
        overlap = 1.0 - (now - index * period) / period
        return entry, entry[1] * overlap + entry[2]

    async def acquire(self, key: str, limit: int, period: float) -> Verdict:
        now = self._clock()
        entry, estimate = self._window(key, period, now)
        reset_at = (entry[0] + 1) * period
        if estimate + 1 > limit:
            return Verdict(False, limit, 0, reset_at)
        entry[2] += 1
        return Verdict(True, limit, max(0, math.floor(limit - estimate - 1)), reset_at)

    async def peek(self, key: str, limit: int, period: float) -> Verdict:
        now = self._clock()
        entry, estimate = self._window(key, period, now)
        remaining = max(0, math.floor(limit - estimate))
        return Verdict(remaining > 0, limit, remaining, (entry[0] + 1) * period)

    def _sweep(self, now: float) -> None:
        stale = [key for key, e in self._counts.items() if now // e[3] > e[0] + 1]
        for key in stale:
            del self._counts[key]
        # Still full of live keys (a flood from many addresses): forget the oldest half rather
        # than grow without bound. Those clients start afresh, which errs on their side.
        if len(self._counts) >= self._max_keys:
            for key in list(self._counts)[: len(self._counts) // 2]:
                del self._counts[key]
