"""This process's share of the live rooms: a relay per room it serves, joined to the bus."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, TypeVar, cast

import orjson

from townsquare.api.errors import ApiError
from townsquare.rooms import frames
from townsquare.rooms.admission import JoinAdmission
from townsquare.rooms.bus import RoomBus, room_bus
from townsquare.rooms.relay import Listener, ListenerLimits, RelayStats, RoomRelay
from townsquare.rooms.wire import Transport
from townsquare.state import AppState

log = logging.getLogger("townsquare.rooms")
EXTRAS_KEY = "rooms"
KEEPALIVE = 15.0
OPEN_ROOM_SECONDS = 2.0
KEEPALIVE_EVENT = '{"type":"keepalive"}'
_T = TypeVar("_T")


class RoomHub:
    def __init__(
        self,
        bus: RoomBus,
        limits: ListenerLimits,
        *,
        count_interval: float = 2.0,
        admission: JoinAdmission | None = None,
    ) -> None:
        self.bus = bus
        self.limits = limits
        self.stats = RelayStats()
        self.count_interval = count_interval
        self.admission = admission or JoinAdmission(rate=1_000.0, burst=1_000)
        self.relays: dict[int, RoomRelay] = {}
        self._users: dict[int, int] = {}  # connections per relay (listeners and speakers)
        self._counts: dict[int, int] = {}
        self._open_rooms: dict[int, float] = {}
        self._look_ups: dict[int, asyncio.Future[Any]] = {}
        # Listener count changes not yet on the bus, and the flush that will take them there.
        self._deltas: dict[int, int] = {}
        self._next_flush: asyncio.Future[None] | None = None
        self._flusher: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()
        self._counter: asyncio.Task[None] | None = None
        bus.bind(self._deliver)

    def start(self) -> None:
        self._counter = asyncio.create_task(self._count_loop(), name="rooms-listener-count")

    async def stop(self) -> None:
        if self._counter is not None:
            self._counter.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._counter
        for relay in list(self.relays.values()):
            relay.close_all("shutdown")
        if self._flusher is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._flusher, 5.0)
        await self.bus.close()

    def open_to_anyone(self, room_id: int) -> bool:
        """Whether the room was seen public and live moments ago (a join storm of anonymous
        listeners then costs no database work)."""
        expiry = self._open_rooms.get(room_id)
        return expiry is not None and expiry > time.monotonic()

    async def look_up_once(self, room_id: int, look_up: Callable[[], Awaitable[_T]]) -> _T:
        """The outcome of ``look_up()``, shared by every caller for ``room_id`` while one is
        under way (its result or its error)."""
        pending = self._look_ups.get(room_id)
        if pending is None:
            pending = asyncio.ensure_future(look_up())
            self._look_ups[room_id] = pending
            pending.add_done_callback(lambda _done: self._look_ups.pop(room_id, None))
        # Shielded: a caller that goes away does not cancel the others' look-up.
        return cast(_T, await asyncio.shield(pending))

    def note_open(self, room_id: int) -> None:
        if len(self._open_rooms) > 10_000:
            self._open_rooms.clear()
        self._open_rooms[room_id] = time.monotonic() + OPEN_ROOM_SECONDS

    def _deliver(self, room_id: int, frame: bytes) -> None:
        if frame[0] == frames.EVENT and b'"ended"' in frame:
            self._open_rooms.pop(room_id, None)
        relay = self.relays.get(room_id)
        if relay is not None:
            relay.deliver(frame)

    async def _enter(self, room_id: int) -> RoomRelay:
        relay = self.relays.get(room_id)
        if relay is not None:
            # Relaying the room already (taken out of ``relays`` before any wait when it
            # stops): no lock to queue for, which a join storm would do once per listener.
            self._users[room_id] = self._users.get(room_id, 0) + 1
            return relay
        async with self._lock:
            relay = self.relays.get(room_id)
            if relay is None:
                relay = RoomRelay(room_id, self.limits, self.stats)
                self.relays[room_id] = relay
                for init in await self.bus.watch(room_id):
                    relay.deliver(init)
            self._users[room_id] = self._users.get(room_id, 0) + 1
            return relay

    async def _exit(self, room_id: int) -> None:
        async with self._lock:
            left = self._users.get(room_id, 1) - 1
            if left > 0:
                self._users[room_id] = left
                return
            self._users.pop(room_id, None)
            self._counts.pop(room_id, None)
            if self.relays.pop(room_id, None) is not None:
                await self.bus.unwatch(room_id)

    async def join(
        self, room_id: int, account_id: int | None, transport: Transport | None = None
    ) -> tuple[RoomRelay, Listener]:
        relay = await self._enter(room_id)
        listener = relay.add_listener(account_id, transport)
        await self._count(room_id, 1)
        return relay, listener

    async def leave(self, relay: RoomRelay, listener: Listener) -> None:
        relay.remove_listener(listener)
        with contextlib.suppress(Exception):
            await self._count(relay.room_id, -1)
        await self._exit(relay.room_id)

    async def _count(self, room_id: int, delta: int) -> None:
        """Add ``delta`` to the room's listener count on the bus; returns once it is there.

        Changes made while a flush is under way go together in the next one, so that a storm
        of joins costs a bus round trip per flush rather than one per listener (with Redis, a
        command and, when they all wait at once, a connection each)."""
        self._deltas[room_id] = self._deltas.get(room_id, 0) + delta
        if self._next_flush is None:
            self._next_flush = asyncio.get_running_loop().create_future()
        flushed = self._next_flush
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush(), name="rooms-listener-counts")
        await asyncio.shield(flushed)

    async def _flush(self) -> None:
        while self._next_flush is not None:
            flushed, self._next_flush = self._next_flush, None
            deltas, self._deltas = self._deltas, {}
            try:
                for room_id, delta in deltas.items():
                    if delta:
                        await self.bus.count_listeners(room_id, delta)
            except Exception as error:
                flushed.set_exception(error)
                flushed.exception()  # the joins and leaves waiting see it; nobody else need
            else:
                flushed.set_result(None)

    async def add_speaker(
        self, room_id: int, account_id: int, close: Callable[[str], None]
    ) -> RoomRelay:
        relay = await self._enter(room_id)
        previous = relay.speaker_closers.get(account_id)
        if previous is not None:
            previous("replaced")  # one stream per speaker: the newest connection wins
        relay.speaker_closers[account_id] = close
        return relay

    async def remove_speaker(
        self, relay: RoomRelay, account_id: int, close: Callable[[str], None]
    ) -> None:
        if relay.speaker_closers.get(account_id) is close:
            del relay.speaker_closers[account_id]
        await self._exit(relay.room_id)

    async def publish(self, room_id: int, frame: bytes) -> None:
        await self.bus.publish(room_id, frame)

    async def event(self, room_id: int, event: Mapping[str, object]) -> None:
        await self.bus.publish(room_id, frames.event_frame(orjson.dumps(event).decode()))

    async def listener_count(self, room_id: int) -> int:
        return await self.bus.count_listeners(room_id, 0)

    async def _count_loop(self) -> None:
        last_keepalive = time.monotonic()
        while True:
            await asyncio.sleep(self.count_interval)
            if time.monotonic() - last_keepalive >= KEEPALIVE:
                # Quiet rooms too write to every listener now and then, which finds the
                # connections that died without a word.
                last_keepalive = time.monotonic()
                for relay in list(self.relays.values()):
                    relay.send_event(KEEPALIVE_EVENT)
            for room_id, relay in list(self.relays.items()):
                try:
                    count = await self.bus.count_listeners(room_id, 0)
                except Exception:
                    log.exception("rooms: reading the listener count failed")
                    continue
                if self._counts.get(room_id) != count:
                    self._counts[room_id] = count
                    relay.send_event(orjson.dumps({"type": "listeners", "count": count}).decode())


def hub_of(state: AppState) -> RoomHub:
    hub = state.extras.get(EXTRAS_KEY)
    if not isinstance(hub, RoomHub):
        raise ApiError(503, "Rooms are not available")
    return hub


async def start_rooms(state: AppState) -> None:
    settings = state.settings
    hub = RoomHub(
        room_bus(settings.redis_url),
        ListenerLimits(
            buffer_bytes=settings.rooms_listener_buffer_bytes,
            max_lag=settings.rooms_listener_max_lag,
        ),
        admission=JoinAdmission(
            rate=settings.rooms_join_rate, burst=max(1, int(settings.rooms_join_rate))
        ),
    )
    hub.start()
    state.extras[EXTRAS_KEY] = hub


async def stop_rooms(state: AppState) -> None:
    hub = state.extras.pop(EXTRAS_KEY, None)
    if isinstance(hub, RoomHub):
        await hub.stop()
