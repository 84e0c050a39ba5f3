"""Handing each frame of a room to this process's listeners without ever waiting for one.

A frame is made ready once for all listeners (:class:`Outgoing`). Where the server offers the
connection's transport, delivering it is a write of the ready WebSocket message to each
listener's socket in one loop (:class:`SocketListener`, see ``wire.py``); otherwise an append to
a bounded queue emptied by a task of the listener's own (:class:`QueuedListener`). Either way a
listener with more than its budget waiting (unsent in the transport's buffer, or queued) misses
whole Clusters (never part of one) until it catches up, and is cut off once it has been behind
for ``max_lag`` seconds. A frozen connection therefore costs its budget in memory and nothing in
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

from townsquare.rooms import frames, wire

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

    def expect(self, sequence: int, arrived: float, queued: int, now: float) -> None:
        """A Cluster arrived at ``arrived`` was written to its listeners' sockets by ``now``
        and queued for ``queued`` others."""
        if queued:
            self._pending[sequence] = [arrived, float(queued), now]
        else:
            self.latencies.append(now - arrived)

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


# What an offer came to.
SKIPPED = 0
WRITTEN = 1  # on the listener's socket already
QUEUED = 2  # for the listener's sending task


@dataclass(frozen=True, slots=True)
class Outgoing:
    """One frame for every listener of a room, made ready once: as a WebSocket message for the
    listeners written to directly, as an ASGI message for the others."""

    message: Message
    wire: bytes
    size: int

    @classmethod
    def binary(cls, frame: bytes) -> Outgoing:
        return cls(
            {"type": "websocket.send", "bytes": frame}, wire.binary_message(frame), len(frame)
        )

    @classmethod
    def text(cls, text: str) -> Outgoing:
        return cls({"type": "websocket.send", "text": text}, wire.text_message(text), len(text))


class Listener:
    """One listening connection: what it has waiting, and whether it is behind or closed."""

    __slots__ = ("account_id", "behind_since", "closed", "ending", "limits", "stats", "task")

    def __init__(self, account_id: int | None, limits: ListenerLimits, stats: RelayStats) -> None:
        self.account_id = account_id
        self.limits = limits
        self.stats = stats
        self.behind_since: float | None = None
        self.closed: str | None = None
        self.ending: str | None = None
        # The task to wake when the listener is cut off or the room ends.
        self.task: asyncio.Task[Any] | None = None

    def offer(self, out: Outgoing, sequence: int, *, droppable: bool, now: float) -> int:
        """Hand over a frame: ``WRITTEN``, ``QUEUED`` or ``SKIPPED`` (also when closed)."""
        raise NotImplementedError

    def _may_add(self, waiting: int, droppable: bool, now: float) -> bool:
        """Whether a frame goes out to a listener with ``waiting`` bytes not yet sent."""
        if waiting < self.limits.buffer_bytes:
            if self.behind_since is not None and waiting < self.limits.buffer_bytes // 2:
                self.behind_since = None
            return True
        if self.behind_since is None:
            self.behind_since = now
        elif now - self.behind_since >= self.limits.max_lag:
            self.close("too slow")
            return False
        # Room events and track starts are small and rare; only Clusters are skipped, and
        # then only up to four budgets in all.
        if droppable or waiting >= 4 * self.limits.buffer_bytes:
            self.stats.skipped += 1
            return False
        return True

    def close(self, reason: str) -> None:
        raise NotImplementedError

    def _mark_closed(self, reason: str) -> bool:
        """Record the listener's first close; False when it was closed already."""
        if self.closed is not None:
            return False
        self.closed = reason
        if reason == "too slow":
            self.stats.cut_off += 1
        return True

    def finish(self, reason: str) -> None:
        """Close once what is waiting has been sent."""
        raise NotImplementedError


class SocketListener(Listener):
    """A listener whose frames are written straight to its connection's transport.

    The transport's write buffer is the listener's queue: what the kernel has not taken yet.
    The connection's task only reads (to notice the listener leaving); it is woken to close the
    connection when the listener is cut off or the room ends.
    """

    __slots__ = ("_woken", "transport")

    def __init__(
        self,
        account_id: int | None,
        limits: ListenerLimits,
        stats: RelayStats,
        transport: wire.Transport,
    ) -> None:
        super().__init__(account_id, limits, stats)
        self.transport = transport
        self._woken = False

    def offer(self, out: Outgoing, sequence: int, *, droppable: bool, now: float) -> int:
        if self.closed is not None:
            return SKIPPED
        transport = self.transport
        try:
            if transport.is_closing():
                # Closed under us: the client left, or uvicorn closed it after an unanswered
                # ping (then it waits for the unsent bytes to drain, which may never happen).
                self.close("closing")
                return SKIPPED
            waiting = transport.get_write_buffer_size()
            if (
                waiting >= self.limits.buffer_bytes or self.behind_since is not None
            ) and not self._may_add(waiting, droppable, now):
                return SKIPPED
            transport.write(out.wire)
        except Exception:  # the connection went away under the write
            self.close("gone")
            return SKIPPED
        return WRITTEN

    def close(self, reason: str) -> None:
        if self._mark_closed(reason) and reason != "gone":
            self._wake()

    def finish(self, reason: str) -> None:
        if self.closed is None and self.ending is None:
            self.ending = reason
            self._wake()

    def _wake(self) -> None:
        task = self.task
        if task is not None and not self._woken and task is not asyncio.current_task():
            self._woken = True
            task.cancel()


class QueuedListener(Listener):
    """A listener whose frames go out through the ASGI ``send`` path, from a task of its own
    emptying a bounded queue (where the server does not offer the transport)."""

    __slots__ = ("_waiter", "queue", "queued_bytes", "sending")

    def __init__(self, account_id: int | None, limits: ListenerLimits, stats: RelayStats) -> None:
        super().__init__(account_id, limits, stats)
        self.queue: deque[tuple[Message, int, int]] = deque()
        self.queued_bytes = 0
        self.sending = False
        self._waiter: asyncio.Future[None] | None = None

    def offer(self, out: Outgoing, sequence: int, *, droppable: bool, now: float) -> int:
        if self.closed is not None:
            return SKIPPED
        if self.queued_bytes >= self.limits.buffer_bytes and not self._may_add(
            self.queued_bytes, droppable, now
        ):
            return SKIPPED
        self.queue.append((out.message, out.size, sequence))
        self.queued_bytes += out.size
        self._wake()
        return QUEUED

    def close(self, reason: str) -> None:
        if not self._mark_closed(reason):
            return
        for _message, _size, sequence in self.queue:
            if sequence:
                self.stats.abandoned(sequence)
        self.queue.clear()
        self.queued_bytes = 0
        self._wake()
        if self.sending and self.task is not None and reason != "gone":
            self.task.cancel()

    def finish(self, reason: str) -> None:
        self.ending = reason
        self._wake()

    def _wake(self) -> None:
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
        # Per live track, its INIT frame, so that a late joiner starts with it.
        self.tracks: dict[int, Outgoing] = {}
        self.track_owners: dict[int, int] = {}
        self.speaker_closers: dict[int, Callable[[str], None]] = {}
        self._sequence = 0

    def add_listener(
        self, account_id: int | None, transport: wire.Transport | None = None
    ) -> Listener:
        """A listener written to through ``transport`` where there is one, else queued."""
        listener: Listener
        if transport is not None:
            listener = SocketListener(account_id, self.limits, self.stats, transport)
        else:
            listener = QueuedListener(account_id, self.limits, self.stats)
        now = time.monotonic()
        for out in self.tracks.values():
            listener.offer(out, 0, droppable=False, now=now)
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
        out = Outgoing.binary(frame)
        track_id = int.from_bytes(frame[1 : frames.HEADER_SIZE], "big")
        if kind == frames.CLUSTER:
            if track_id not in self.tracks:
                return  # a listener could not decode it without the track's start
            self._sequence += 1
            sequence = self._sequence
            written = queued = 0
            for listener in self.listeners:
                outcome = listener.offer(out, sequence, droppable=True, now=now)
                if outcome == WRITTEN:
                    written += 1
                elif outcome == QUEUED:
                    queued += 1
            self.stats.deliveries += written
            self.stats.expect(sequence, now, queued, time.monotonic())
            return
        if kind == frames.INIT:
            self.tracks[track_id] = out
        elif kind == frames.END:
            self.tracks.pop(track_id, None)
        for listener in self.listeners:
            listener.offer(out, 0, droppable=False, now=now)

    def send_event(self, event_json: str) -> None:
        """A room event for this process's listeners only (e.g. the listener count)."""
        self._deliver_event(event_json, time.monotonic())

    def _deliver_event(self, event_json: str, now: float) -> None:
        event = orjson.loads(event_json)
        out = Outgoing.text(event_json)
        for listener in list(self.listeners):
            listener.offer(out, 0, droppable=False, now=now)
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
