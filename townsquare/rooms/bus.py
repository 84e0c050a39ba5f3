"""How a room's frames reach every process that has listeners in it.

In-process by default; with ``redis_url`` set, frames go through Redis pub/sub (one channel per
room) so that a speaker on one node is heard by listeners on all of them. The bus also keeps
the live tracks' initialisation frames (a node that starts relaying a room mid-stream needs
them) and the room's listener count across nodes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Protocol

from townsquare.rooms import frames

log = logging.getLogger("townsquare.rooms")

# (room id, frame): called for every frame of every room this process watches.
Deliver = Callable[[int, bytes], None]


class RoomBus(Protocol):
    def bind(self, deliver: Deliver) -> None: ...

    async def publish(self, room_id: int, frame: bytes) -> None: ...

    async def watch(self, room_id: int) -> list[bytes]:
        """Start delivering the room's frames here; returns its live tracks' INIT frames."""
        ...

    async def unwatch(self, room_id: int) -> None: ...

    async def count_listeners(self, room_id: int, delta: int) -> int:
        """Add ``delta`` to the room's listener count (all nodes); returns the new count."""
        ...

    async def close(self) -> None: ...


class _TrackMemory:
    """INIT frames of live tracks, by room, as every bus keeps them."""

    @staticmethod
    def update(tracks: dict[int, bytes], frame: bytes) -> None:
        kind, track_id, _payload = frames.parse_frame(frame)
        if kind == frames.INIT:
            tracks[track_id] = frame
        elif kind == frames.END:
            tracks.pop(track_id, None)


class LocalRoomBus:
    """Everything in this process."""

    def __init__(self) -> None:
        self._deliver: Deliver = lambda _room, _frame: None
        self._tracks: dict[int, dict[int, bytes]] = {}
        self._counts: dict[int, int] = {}

    def bind(self, deliver: Deliver) -> None:
        self._deliver = deliver

    async def publish(self, room_id: int, frame: bytes) -> None:
        if frame[0] in (frames.INIT, frames.END):
            tracks = self._tracks.setdefault(room_id, {})
            _TrackMemory.update(tracks, frame)
            if not tracks:
                del self._tracks[room_id]
        self._deliver(room_id, frame)

    async def watch(self, room_id: int) -> list[bytes]:
        return list(self._tracks.get(room_id, {}).values())

    async def unwatch(self, room_id: int) -> None:
        return None

    async def count_listeners(self, room_id: int, delta: int) -> int:
        count = max(0, self._counts.get(room_id, 0) + delta)
        if count:
            self._counts[room_id] = count
        else:
            self._counts.pop(room_id, None)
        return count

    async def close(self) -> None:
        return None


class RedisRoomBus:
    """Frames through Redis pub/sub; track starts and listener counts in Redis keys."""

    PREFIX = "townsquare:rooms:"

    def __init__(self, url: str) -> None:
        from redis.asyncio import Redis

        self._redis = Redis.from_url(url)
        self._pubsub = self._redis.pubsub(ignore_subscribe_messages=True)
        self._deliver: Deliver = lambda _room, _frame: None
        self._reader: asyncio.Task[None] | None = None
        self._watched: set[int] = set()

    def bind(self, deliver: Deliver) -> None:
        self._deliver = deliver

    def _channel(self, room_id: int) -> str:
        return f"{self.PREFIX}{room_id}"

    async def publish(self, room_id: int, frame: bytes) -> None:
        kind = frame[0]
        if kind in (frames.INIT, frames.END):
            _kind, track_id, _payload = frames.parse_frame(frame)
            key = f"{self.PREFIX}{room_id}:tracks"
            if kind == frames.INIT:
                await self._redis.hset(key, str(track_id), frame)
                await self._redis.expire(key, 86_400)
            else:
                await self._redis.hdel(key, str(track_id))
        await self._redis.publish(self._channel(room_id), frame)

    async def watch(self, room_id: int) -> list[bytes]:
        if room_id not in self._watched:
            self._watched.add(room_id)
            await self._pubsub.subscribe(self._channel(room_id))
            if self._reader is None:
                self._reader = asyncio.create_task(self._read(), name="rooms-redis-reader")
        found = await self._redis.hgetall(f"{self.PREFIX}{room_id}:tracks")
        return [value if isinstance(value, bytes) else value.encode() for value in found.values()]

    async def unwatch(self, room_id: int) -> None:
        if room_id in self._watched:
            self._watched.discard(room_id)
            await self._pubsub.unsubscribe(self._channel(room_id))

    async def count_listeners(self, room_id: int, delta: int) -> int:
        key = f"{self.PREFIX}{room_id}:listeners"
        count = int(await self._redis.incrby(key, delta) if delta else await self._get(key))
        return max(0, count)

    async def _get(self, key: str) -> int:
        value = await self._redis.get(key)
        return int(value) if value is not None else 0

    async def _read(self) -> None:
        prefix = self.PREFIX.encode()
        while True:
            try:
                message = await self._pubsub.get_message(timeout=1.0)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("room bus: reading from Redis failed; retrying")
                await asyncio.sleep(1.0)
                continue
            if message is None or message.get("type") != "message":
                if not self._watched:
                    await asyncio.sleep(0.05)
                continue
            channel = message["channel"]
            if isinstance(channel, str):
                channel = channel.encode()
            try:
                room_id = int(bytes(channel)[len(prefix) :])
            except ValueError:
                continue
            self._deliver(room_id, bytes(message["data"]))

    async def close(self) -> None:
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
        await self._pubsub.aclose()  # type: ignore[no-untyped-call]
        await self._redis.aclose()


def room_bus(redis_url: str) -> RoomBus:
    return RedisRoomBus(redis_url) if redis_url else LocalRoomBus()
