"""Handing each frame of a room to this process's listeners without ever waiting for one.

Every listener has a bounded queue, emptied by its own connection's task. Delivering a frame
is an append to each queue: a listener whose queue is over its budget misses whole Clusters
(never part of one) until it catches up, and is cut off once it has been behind for
``max_lag`` seconds. A frozen connection therefore costs its budget in memory and nothing in
time to anybody else.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson

from townsquare.rooms import frames

# An ASGI "websocket.send" message, built once per frame and shared by every listener.
Message = dict[str, Any]


class ListenerClosed(Exception):
    """The listener was cut off or the room ended; ``reason`` says which."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class ListenerLimits:
    buffer_bytes: int = 48 * 1024
    max_lag: float = 10.0


@dataclass
class RelayStats:
    """What the benchmark reads: deliveries and the time from a frame's arrival to its last
    write to a listener."""

    deliveries: int = 0
    skipped: int = 0
    cut_off: int = 0
    latencies: deque[float] = field(default_factory=lambda: deque(maxlen=10_000))
    _pending: dict[int, list[float]] = field(default_factory=dict)

    def expect(self, sequence: int, arrived: float, listeners: int) -> None:
        if listeners:
            self._pending[sequence] = [arrived, float(listeners), arrived]

    def written(self, sequence: int, now: float) -> None:
        entry = self._pending.get(sequence)
        if entry is None:
            return
        entry[1] -= 1
        entry[2] = now
        if entry[1] <= 0:
            del self._pending[sequence]
            self.latencies.append(now - entry[0])

    def abandoned(self, sequence: int) -> None:
        entry = self._pending.get(sequence)
        if entry is None:
            return
        entry[1] -= 1
        if entry[1] <= 0:
            del self._pending[sequence]
            self.latencies.append(entry[2] - entry[0])


class Listener:
    """One listening connection's queue of frames to send."""

    __slots__ = (
        "_waiter",
        "account_id",
        "behind_since",
        "closed",
        "ending",
        "limits",
        "queue",
        "queued_bytes",
        "sending",
        "stats",
        "task",
    )

    def __init__(self, account_id: int | None, limits: ListenerLimits, stats: RelayStats) -> None:
        self.account_id = account_id
        self.limits = limits
        self.stats = stats
        self.queue: deque[tuple[Message, int, int]] = deque()
        self.queued_bytes = 0
        self.behind_since: float | None = None
        self.closed: str | None = None
        self.ending: str | None = None
        # The connection's task, cancelled if it is stuck writing when it is cut off.
        self.task: asyncio.Task[Any] | None = None
        self.sending = False
        self._waiter: asyncio.Future[None] | None = None

    def offer(
        self, message: Message, size: int, sequence: int, *, droppable: bool, now: float
    ) -> bool:
        """Queue a frame; False if it was skipped (or the listener is closed)."""
        if self.closed is not None:
            return False
        if self.queued_bytes >= self.limits.buffer_bytes:
            if self.behind_since is None:
                self.behind_since = now
            elif now - self.behind_since >= self.limits.max_lag:
                self.close("too slow")
                return False
            # Room events and track starts are small and rare; only Clusters are skipped, and
            # then only up to four budgets in all.
            if droppable or self.queued_bytes >= 4 * self.limits.buffer_bytes:
                self.stats.skipped += 1
                return False
        self.queue.append((message, size, sequence))
        self.queued_bytes += size
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)
        return True

    def close(self, reason: str) -> None:
        if self.closed is not None:
            return
        self.closed = reason
        if reason == "too slow":
            self.stats.cut_off += 1
        for _message, _size, sequence in self.queue:
            if sequence:
                self.stats.abandoned(sequence)
        self.queue.clear()
        self.queued_bytes = 0
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)
        if self.sending and self.task is not None and reason != "gone":
            self.task.cancel()

    def finish(self, reason: str) -> None:
        """Close once what is queued has been sent."""
        self.ending = reason
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def next(self) -> tuple[Message, int, int]:
        """The next frame to send; raises :class:`ListenerClosed` once there is none to come."""
        while not self.queue:
            if self.closed is not None:
                raise ListenerClosed(self.closed)
            if self.ending is not None:
                raise ListenerClosed(self.ending)
            # A bare future (no timeout): the hub's keepalives wake quiet listeners.
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        if self.closed is not None:
            raise ListenerClosed(self.closed)
        return self.queue.popleft()

    def sent(self, size: int, sequence: int) -> None:
        self.queued_bytes -= size
        if sequence:
            self.stats.deliveries += 1
            self.stats.written(sequence, time.monotonic())
        if self.behind_since is not None and self.queued_bytes < self.limits.buffer_bytes // 2:
            self.behind_since = None


class RoomRelay:
    """One room's tracks and listeners in this process."""

    def __init__(self, room_id: int, limits: ListenerLimits, stats: RelayStats) -> None:
        self.room_id = room_id
        self.limits = limits
        self.stats = stats
        self.listeners: set[Listener] = set()
        # Per live track, its INIT message, so that a late joiner starts with it.
        self.tracks: dict[int, tuple[Message, int]] = {}
        self.track_owners: dict[int, int] = {}
        self.speaker_closers: dict[int, Callable[[str], None]] = {}
        self._sequence = 0

    def add_listener(self, account_id: int | None) -> Listener:
        listener = Listener(account_id, self.limits, self.stats)
        now = time.monotonic()
        for message, size in self.tracks.values():
            listener.offer(message, size, 0, droppable=False, now=now)
        self.listeners.add(listener)
        return listener

    def remove_listener(self, listener: Listener) -> None:
        self.listeners.discard(listener)
        listener.close("gone")

    def deliver(self, frame: bytes) -> None:
        """Hand a frame from the bus to every listener here."""
        kind = frame[0]
        now = time.monotonic()
        if kind == frames.EVENT:
            self._deliver_event(frame[frames.HEADER_SIZE :].decode(), now)
            return
        message: Message = {"type": "websocket.send", "bytes": frame}
        size = len(frame)
        track_id = int.from_bytes(frame[1 : frames.HEADER_SIZE], "big")
        if kind == frames.CLUSTER:
            if track_id not in self.tracks:
                return  # a listener could not decode it without the track's start
            self._sequence += 1
            sequence = self._sequence
            self.stats.expect(sequence, now, len(self.listeners))
            for listener in self.listeners:
                if not listener.offer(message, size, sequence, droppable=True, now=now):
                    self.stats.abandoned(sequence)
            return
        if kind == frames.INIT:
            self.tracks[track_id] = (message, size)
        elif kind == frames.END:
            self.tracks.pop(track_id, None)
        for listener in self.listeners:
            listener.offer(message, size, 0, droppable=False, now=now)

    def send_event(self, event_json: str) -> None:
        """A room event for this process's listeners only (e.g. the listener count)."""
        self._deliver_event(event_json, time.monotonic())

    def _deliver_event(self, event_json: str, now: float) -> None:
        event = orjson.loads(event_json)
        message: Message = {"type": "websocket.send", "text": event_json}
        size = len(event_json)
        for listener in list(self.listeners):
            listener.offer(message, size, 0, droppable=False, now=now)
        kind = event.get("type")
        account_id = int(event["account_id"]) if event.get("account_id") else None
        if kind == "removed" and account_id is not None:
            for listener in list(self.listeners):
                if listener.account_id == account_id:
                    listener.close("removed")
            self._close_speaker(account_id, "removed")
        elif account_id is not None and (
            kind == "muted" or (kind == "role" and event.get("role") == "listener")
        ):
            self._close_speaker(account_id, "muted" if kind == "muted" else "not a speaker")
        elif kind == "ended":
            for listener in list(self.listeners):
                listener.finish("ended")
            for closer in list(self.speaker_closers.values()):
                closer("ended")

    def _close_speaker(self, account_id: int, reason: str) -> None:
        closer = self.speaker_closers.get(account_id)
        if closer is not None:
            closer(reason)

    def close_all(self, reason: str) -> None:
        for listener in list(self.listeners):
            listener.close(reason)
        for closer in list(self.speaker_closers.values()):
            closer(reason)
