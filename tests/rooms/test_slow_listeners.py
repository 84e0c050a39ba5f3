"""Slow listeners: whole Clusters skipped over the budget, then cut off; over real TCP a
listener that reads nothing neither delays the others nor stays connected."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import socket
from collections.abc import AsyncIterator

import pytest
import uvicorn
from fastapi import FastAPI
from websockets.asyncio.client import connect

from tests.conftest import Person
from tests.postgres_server import free_port
from tests.rooms.conftest import OpenRoom, wait_for
from tests.rooms.webm import opus_webm
from townsquare.config import Settings
from townsquare.rooms import frames
from townsquare.rooms.ebml import ClusterSplitter
from townsquare.rooms.hub import RoomHub
from townsquare.rooms.relay import Listener, ListenerLimits, RelayStats


@pytest.fixture
def settings(settings: Settings) -> Settings:
    settings.rooms_listener_buffer_bytes = 2048
    settings.rooms_listener_max_lag = 0.5
    return settings


@pytest.fixture
async def server(app: FastAPI) -> AsyncIterator[str]:
    """The app behind a real uvicorn on a loopback port."""
    port = free_port()
    # A ping queued behind seconds of unread audio finds a frozen listener (kernel buffers
    # on loopback hold megabytes, so the relay's own buffer would fill only much later).
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=port,
        lifespan="off",
        log_level="warning",
        ws="websockets-sansio",
        ws_ping_interval=1.0,
        ws_ping_timeout=3.0,
    )
    instance = uvicorn.Server(config)
    task = asyncio.create_task(instance.serve())
    await wait_for(lambda: instance.started)
    yield f"127.0.0.1:{port}"
    instance.should_exit = True
    with contextlib.suppress(asyncio.CancelledError):
        await asyncio.wait_for(task, 10)


def frozen_listener(address: str, path: str) -> socket.socket:
    """A WebSocket handshake from a client with a tiny receive buffer that then reads nothing."""
    host, port = address.split(":")
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect((host, int(port)))
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall(
        (
            f"GET {path} HTTP/1.1\r\nHost: {address}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
        ).encode()
    )
    return sock


def relay_of(hub: RoomHub, room: dict[str, str]) -> int:
    relay = hub.relays.get(int(room["id"]))
    return len(relay.listeners) if relay else 0


async def test_a_frozen_listener_is_cut_off_without_delaying_the_others(
    server: str, hub: RoomHub, alice: Person, bob: Person, open_room: OpenRoom
) -> None:
    data = opus_webm(60.0, bitrate=64_000)
    clusters = ClusterSplitter().feed(data)
    room = await open_room(alice)
    path = f"/api/v1/rooms/{room['id']}/listen"
    frozen = frozen_listener(server, path)
    received: list[bytes] = []
    try:
        async with connect(f"ws://{server}{path}?access_token={bob.token}") as listener:
            await wait_for(lambda: relay_of(hub, room) == 2)

            async def listen() -> None:
                while len(received) < len(clusters):
                    message = await listener.recv()
                    if isinstance(message, bytes) and message[0] == frames.CLUSTER:
                        received.append(message[frames.HEADER_SIZE :])

            reading = asyncio.create_task(listen())
            speak = f"ws://{server}/api/v1/rooms/{room['id']}/speak?access_token={alice.token}"
            async with connect(speak) as speaker:
                for position in range(0, len(data), 1000):
                    await speaker.send(data[position : position + 1000])
                    await asyncio.sleep(0.003)
                await asyncio.wait_for(reading, 20)
            await wait_for(lambda: relay_of(hub, room) == 1, 10)
    finally:
        frozen.close()
    # The listener that keeps up got every Cluster, whole and in order.
    assert received == clusters


def test_over_budget_a_listener_skips_whole_clusters_then_is_cut_off() -> None:
    stats = RelayStats()
    listener = Listener(7, ListenerLimits(buffer_bytes=1000, max_lag=10.0), stats)
    cluster = {"type": "websocket.send", "bytes": b"c" * 400}
    accepted = [listener.offer(cluster, 400, n, droppable=True, now=0.0) for n in range(1, 6)]
    # Three Clusters fill the budget; the next ones are skipped whole, not cut.
    assert accepted == [True, True, True, False, False]
    assert listener.queued_bytes == 1200 and stats.skipped == 2
    # Room events still get through (up to four budgets).
    event = {"type": "websocket.send", "text": '{"type":"ended"}'}
    assert listener.offer(event, 16, 0, droppable=False, now=1.0)
    assert listener.closed is None
    # Behind for max_lag seconds: cut off, and its queue is freed.
    assert not listener.offer(cluster, 400, 6, droppable=True, now=10.5)
    assert listener.closed == "too slow" and stats.cut_off == 1
    assert listener.queued_bytes == 0 and not listener.queue


def test_a_listener_that_catches_up_is_not_cut_off() -> None:
    stats = RelayStats()
    listener = Listener(None, ListenerLimits(buffer_bytes=1000, max_lag=10.0), stats)
    cluster = {"type": "websocket.send", "bytes": b"c" * 600}
    assert listener.offer(cluster, 600, 1, droppable=True, now=0.0)
    assert listener.offer(cluster, 600, 2, droppable=True, now=0.0)
    assert not listener.offer(cluster, 600, 3, droppable=True, now=1.0)
    listener.queue.popleft()
    listener.sent(600, 1)
    listener.queue.popleft()
    listener.sent(600, 2)
    assert listener.offer(cluster, 600, 4, droppable=True, now=20.0)
    assert listener.closed is None
