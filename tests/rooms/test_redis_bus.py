"""Rooms across nodes: two hubs joined by a real Redis server relay the same frames."""

from __future__ import annotations

import asyncio
import shutil
import socket
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from tests.postgres_server import free_port
from tests.rooms.webm import opus_webm
from townsquare.rooms import frames
from townsquare.rooms.bus import RedisRoomBus
from townsquare.rooms.ebml import ClusterSplitter
from townsquare.rooms.hub import RoomHub
from townsquare.rooms.relay import Listener, ListenerLimits, QueuedListener

REDIS_SERVER = shutil.which("redis-server")
# The room events each listener has received, by listener.
EVENTS: dict[int, list[str]] = {}
pytestmark = pytest.mark.skipif(REDIS_SERVER is None, reason="redis-server is not installed")


@pytest.fixture(scope="module")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    assert REDIS_SERVER is not None
    port = free_port()
    workdir: Path = tmp_path_factory.mktemp("redis")
    process = subprocess.Popen(
        [
            REDIS_SERVER,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--dir",
            str(workdir),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        process.terminate()
        process.wait(10)


@pytest.fixture
async def nodes(redis_url: str) -> AsyncIterator[tuple[RoomHub, RoomHub]]:
    one = RoomHub(RedisRoomBus(redis_url), ListenerLimits(), count_interval=0.05)
    other = RoomHub(RedisRoomBus(redis_url), ListenerLimits(), count_interval=0.05)
    one.start()
    other.start()
    yield one, other
    await one.stop()
    await other.stop()


async def take(listener: Listener) -> tuple[int, int, bytes] | str:
    assert isinstance(listener, QueuedListener)  # joined without a transport
    message, size, sequence = await asyncio.wait_for(listener.next(), 15.0)
    listener.sent(size, sequence)
    if "text" in message:
        EVENTS.setdefault(id(listener), []).append(str(message["text"]))
        return str(message["text"])
    return frames.parse_frame(message["bytes"])


async def media(listener: Listener) -> tuple[int, int, bytes]:
    while isinstance(item := await take(listener), str):
        pass
    return item


async def test_a_speaker_on_one_node_is_heard_on_another(nodes: tuple[RoomHub, RoomHub]) -> None:
    speaking_node, listening_node = nodes
    room = time.time_ns()
    splitter = ClusterSplitter()
    clusters = splitter.feed(opus_webm(1.5))
    assert splitter.init_segment is not None
    track = 42

    relay, early = await listening_node.join(room, 1)
    await speaking_node.publish(room, frames.media_frame(frames.INIT, track, splitter.init_segment))
    for cluster in clusters[:3]:
        await speaking_node.publish(room, frames.media_frame(frames.CLUSTER, track, cluster))
    assert await media(early) == (frames.INIT, track, splitter.init_segment)
    assert [(await media(early))[2] for _ in range(3)] == clusters[:3]

    # A node that starts relaying the room mid-stream gets the track's start from Redis.
    late_relay, late = await speaking_node.join(room, 2)
    assert await media(late) == (frames.INIT, track, splitter.init_segment)
    for cluster in clusters[3:]:
        await speaking_node.publish(room, frames.media_frame(frames.CLUSTER, track, cluster))
    assert [(await media(late))[2] for _ in clusters[3:]] == clusters[3:]
    assert [(await media(early))[2] for _ in clusters[3:]] == clusters[3:]

    # Both nodes count both listeners, and tell them.
    assert await listening_node.listener_count(room) == 2
    count_event = '{"type":"listeners","count":2}'
    while count_event not in EVENTS.get(id(early), []):
        assert isinstance(await take(early), str)

    await speaking_node.event(room, {"type": "removed", "account_id": "1"})
    with pytest.raises(Exception, match="removed"):
        for _ in range(3):
            await take(early)
    await listening_node.leave(relay, early)
    await speaking_node.leave(late_relay, late)
    assert await speaking_node.listener_count(room) == 0
    await asyncio.sleep(0)
