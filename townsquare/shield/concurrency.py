"""How many requests one worker serves at once, and who waits for the next free slot.

:class:`AdaptiveLimit` follows the gradient idea of Envoy's adaptive concurrency filter: the
limit grows while the latency of served requests stays near the minimum measured recently, and
shrinks in proportion when it rises (queueing inside the worker or the database). The minimum
is measured afresh every window, so a lasting change of pace is learnt.

:class:`AdmissionQueue` hands free slots to waiting requests, highest priority class first; a
request that waited past its class's deadline is shed rather than served late (as CoDel drops
packets that sat too long), so no queue holds more than its deadline's worth of work.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field


class AdaptiveLimit:
    def __init__(
        self,
        *,
        initial: int,
        minimum: int,
        maximum: int,
        tolerance: float,
        min_rtt_window: float,
        interval: float = 0.25,
        min_samples: int = 8,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.minimum = max(1, minimum)
        self.maximum = max(self.minimum, maximum)
        self.limit = min(max(initial, self.minimum), self.maximum)
        self.tolerance = tolerance
        self.min_rtt_window = min_rtt_window
        self.interval = interval
        self.min_samples = min_samples
        self.clock = clock
        self.min_rtt: float | None = None
        self.last_sample_rtt: float | None = None
        self._window_min: float | None = None
        self._window_started = clock()
        self._samples: list[float] = []
        self._interval_started = clock()
        self._peak_in_flight = 0

    def record(self, latency: float, in_flight: int) -> None:
        """One served request took ``latency`` seconds with ``in_flight`` requests running."""
        self._samples.append(latency)
        if in_flight > self._peak_in_flight:
            self._peak_in_flight = in_flight
        now = self.clock()
        if now - self._interval_started >= self.interval and len(self._samples) >= self.min_samples:
            self._update(now)

    def _update(self, now: float) -> None:
        samples = sorted(self._samples)
        sample_rtt = samples[min(len(samples) - 1, int(len(samples) * 0.9))]
        self._samples.clear()
        peak, self._peak_in_flight = self._peak_in_flight, 0
        self._interval_started = now
        self.last_sample_rtt = sample_rtt

        if self._window_min is None or sample_rtt < self._window_min:
            self._window_min = sample_rtt
        if self.min_rtt is None or self._window_min < self.min_rtt:
            self.min_rtt = self._window_min
        if now - self._window_started >= self.min_rtt_window:
            # The last window's minimum becomes the reference, so a lasting slowdown that
            # affects every request is not mistaken for overload for ever.
            self.min_rtt = self._window_min
            self._window_min = None
            self._window_started = now

        assert self.min_rtt is not None
        # A small absolute slack keeps sub-millisecond jitter from reading as congestion.
        target = self.min_rtt * (1.0 + self.tolerance) + 0.002
        gradient = min(2.0, max(0.5, target / max(sample_rtt, 1e-6)))
        new_limit = self.limit * gradient
        if gradient >= 1.0:
            # Room to grow only matters if the limit was actually reached.
            if peak * 2 < self.limit:
                return
            new_limit += math.sqrt(self.limit)
        self.limit = int(min(self.maximum, max(self.minimum, new_limit)))


class FixedLimit:
    """A limit that does not adapt, for a queue of its own (a lane for costly requests)."""

    def __init__(self, limit: int) -> None:
        self.limit = max(1, limit)

    def record(self, latency: float, in_flight: int) -> None:
        """Latency does not move a fixed limit."""


class Shed(Exception):
    """A request could not get a slot in time (or the queue for its class was full)."""


@dataclass(order=True)
class _Waiter:
    priority: tuple[int, int]
    sequence: int
    future: asyncio.Future[None] = field(compare=False)
    priority_class: int = field(compare=False)


class AdmissionQueue:
    CLASSES = 3

    def __init__(
        self,
        limit: AdaptiveLimit | FixedLimit,
        *,
        deadlines: tuple[float, float, float],
        max_waiting: int,
        reserve_divisor: int = 0,
        reserved_before: tuple[int, int] = (1, -(1 << 62)),
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.limit = limit
        self.deadlines = deadlines
        self.max_waiting = max_waiting
        # One slot in ``reserve_divisor`` (rounded down; none with 0) is kept for requests
        # placed (class, rank) before ``reserved_before``, by default the first class:
        # requests of the others never hold every slot, so a signed-in person's request never
        # waits for a flood's to finish.
        self.reserve_divisor = reserve_divisor
        self.reserved_before = reserved_before
        self.clock = clock
        self.in_flight = 0
        self.waiting = [0] * self.CLASSES
        self._heap: list[_Waiter] = []
        self._sequence = itertools.count()

    async def acquire(self, priority_class: int, rank: int = 0) -> float:
        """Wait for a slot; the seconds waited. ``rank``: lower is served sooner in the class.

        Raises :class:`Shed` when the class's deadline passes first. The caller must call
        :meth:`release` exactly once after a successful acquire.
        """
        heap = self._heap
        while heap and heap[0].future.done():
            heapq.heappop(heap)
        if not heap and self._has_room((priority_class, rank)):
            self.in_flight += 1
            return 0.0
        if self.waiting[priority_class] >= self.max_waiting:
            raise Shed
        if len(heap) > 2 * self.max_waiting * self.CLASSES:
            # Waiters that gave up stay in the heap until popped; don't let them pile up.
            self._heap = heap = [w for w in heap if not w.future.done()]
            heapq.heapify(heap)
        started = self.clock()
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        waiter = _Waiter((priority_class, rank), next(self._sequence), future, priority_class)
        heapq.heappush(heap, waiter)
        self.waiting[priority_class] += 1
        self._dispatch()
        try:
            async with asyncio.timeout(self.deadlines[priority_class]):
                await future
        except (TimeoutError, asyncio.CancelledError) as error:
            if future.done() and not future.cancelled():
                # The slot was handed over just as the wait ended: pass it on.
                self.release()
            else:
                self.waiting[priority_class] -= 1
                future.cancel()
            if isinstance(error, TimeoutError):
                raise Shed from None
            raise
        return self.clock() - started

    def release(self) -> None:
        self.in_flight -= 1
        self._dispatch()

    def _has_room(self, place: tuple[int, int]) -> bool:
        limit = self.limit.limit
        if self.reserve_divisor and place >= self.reserved_before:
            limit -= limit // self.reserve_divisor
        return self.in_flight < limit

    def _dispatch(self) -> None:
        heap = self._heap
        while heap:
            waiter = heap[0]
            if waiter.future.done():
                heapq.heappop(heap)
                continue
            # The first waiter is the most favoured one waiting: if it has no room, nobody
            # has.
            if not self._has_room(waiter.priority):
                break
            heapq.heappop(heap)
            self.waiting[waiter.priority_class] -= 1
            self.in_flight += 1
            waiter.future.set_result(None)

    def record(self, latency: float) -> None:
        self.limit.record(latency, self.in_flight)
        self._dispatch()
