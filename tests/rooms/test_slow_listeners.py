"""Slow listeners: whole Clusters skipped over the budget, then cut off; over real TCP a
listener that reads nothing neither delays the others nor stays connected. Served by
:class:`RoomsWebSocketProtocol`, the relay writes to the listeners' sockets itself."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import socket

import pytest
from websockets.asyncio.client import connect

from tests.conftest import Person
from tests.rooms.conftest import OpenRoom, wait_for
from tests.rooms.webm import opus_webm
from townsquare.config import Settings
from townsquare.rooms import frames, wire
from townsquare.rooms.ebml import ClusterSplitter
from townsquare.rooms.hub import RoomHub
from townsquare.rooms.relay import (
    QUEUED,
    SKIPPED,
    WRITTEN,
    ListenerLimits,
    Outgoing,
    QueuedListener,
    RelayStats,
    SocketListener,
)


@pytest.fixture
def settings(settings: Settings) -> Settings:
    settings.rooms_listener_buffer_bytes = 2048
    settings.rooms_listener_max_lag = 0.5
    return settings


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
    tcp_server: str, hub: RoomHub, alice: Person, bob: Person, open_room: OpenRoom
) -> None:
    data = opus_webm(60.0, bitrate=64_000)
    clusters = ClusterSplitter().feed(data)
    room = await open_room(alice)
    path = f"/api/v1/rooms/{room['id']}/listen"
    server = tcp_server
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
    listener = QueuedListener(7, ListenerLimits(buffer_bytes=1000, max_lag=10.0), stats)
    cluster = Outgoing.binary(b"c" * 400)
    outcomes = [listener.offer(cluster, n, droppable=True, now=0.0) for n in range(1, 6)]
    # Three Clusters fill the budget; the next ones are skipped whole, not cut.
    assert outcomes == [QUEUED, QUEUED, QUEUED, SKIPPED, SKIPPED]
    assert listener.queued_bytes == 1200 and stats.skipped == 2
    # Room events still get through (up to four budgets).
    assert listener.offer(Outgoing.text('{"type":"ended"}'), 0, droppable=False, now=1.0)
    assert listener.closed is None
    # Behind for max_lag seconds: cut off, and its queue is freed.
    assert not listener.offer(cluster, 6, droppable=True, now=10.5)
    assert listener.closed == "too slow" and stats.cut_off == 1
    assert listener.queued_bytes == 0 and not listener.queue


def test_a_listener_that_catches_up_is_not_cut_off() -> None:
    stats = RelayStats()
    listener = QueuedListener(None, ListenerLimits(buffer_bytes=1000, max_lag=10.0), stats)
    cluster = Outgoing.binary(b"c" * 600)
    assert listener.offer(cluster, 1, droppable=True, now=0.0)
    assert listener.offer(cluster, 2, droppable=True, now=0.0)
    assert not listener.offer(cluster, 3, droppable=True, now=1.0)
    listener.queue.popleft()
    listener.sent(600, 1)
    listener.queue.popleft()
    listener.sent(600, 2)
    assert listener.offer(cluster, 4, droppable=True, now=20.0)
    assert listener.closed is None


async def test_a_socket_listener_skips_whole_clusters_over_its_unsent_bytes() -> None:
    """The budget counts what the kernel has not taken from the transport yet."""
    ours, theirs = socket.socketpair()
    ours.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    theirs.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    loop = asyncio.get_running_loop()
    transport, _protocol = await loop.create_connection(asyncio.Protocol, sock=ours)
    try:
        stats = RelayStats()
        limits = ListenerLimits(buffer_bytes=8192, max_lag=10.0)
        listener = SocketListener(7, limits, stats, transport)
        cluster = Outgoing.binary(b"c" * 1000)
        # The other end reads nothing: the kernel's buffers fill, then the transport's.
        outcomes = [listener.offer(cluster, n, droppable=True, now=0.0) for n in range(1, 200)]
        assert outcomes[0] == WRITTEN and SKIPPED in outcomes
        assert set(outcomes[outcomes.index(SKIPPED) :]) == {SKIPPED}
        unsent = transport.get_write_buffer_size()
        assert limits.buffer_bytes <= unsent < limits.buffer_bytes + len(cluster.wire)
        # A room event still goes out; then, behind for max_lag seconds, it is cut off.
        assert listener.offer(Outgoing.text('{"type":"hand"}'), 0, droppable=False, now=1.0)
        assert listener.offer(cluster, 500, droppable=True, now=10.5) == SKIPPED
        assert listener.closed == "too slow" and stats.cut_off == 1
        assert transport.get_write_buffer_size() == unsent + len(
            Outgoing.text('{"type":"hand"}').wire
        )
        # What the other end gets is whole WebSocket messages, in order.
        theirs.setblocking(False)
        received = bytearray()
        while len(received) < 4 * len(cluster.wire):
            await asyncio.sleep(0.01)
            with contextlib.suppress(BlockingIOError):
                received += theirs.recv(65536)
        assert bytes(received[: len(cluster.wire)]) == cluster.wire
    finally:
        transport.abort()
        theirs.close()


async def test_a_socket_listener_closed_under_the_relay_is_let_go() -> None:
    ours, theirs = socket.socketpair()
    transport, _protocol = await asyncio.get_running_loop().create_connection(
        asyncio.Protocol, sock=ours
    )
    try:
        listener = SocketListener(None, ListenerLimits(), RelayStats(), transport)
        assert listener.offer(Outgoing.binary(b"c"), 1, droppable=True, now=0.0) == WRITTEN
        transport.close()
        assert listener.offer(Outgoing.binary(b"c"), 2, droppable=True, now=0.0) == SKIPPED
        assert listener.closed == "closing"
    finally:
        transport.abort()
        theirs.close()


async def test_writes_to_a_frozen_listener_stop_at_its_budget(
    tcp_server: str, hub: RoomHub, alice: Person, settings: Settings, open_room: OpenRoom
) -> None:
    """Served by uvicorn over real TCP, what waits on the server for a listener that reads
    nothing is at most its budget and one Cluster (plus the room's small events): the relay
    stops writing to it there, skips its Clusters, and cuts it off."""
    data = opus_webm(60.0, bitrate=64_000)
    clusters = ClusterSplitter().feed(data)
    largest = max(
        len(wire.binary_message(frames.media_frame(frames.CLUSTER, 1, c))) for c in clusters
    )
    room = await open_room(alice)
    frozen = frozen_listener(tcp_server, f"/api/v1/rooms/{room['id']}/listen")
    most_waiting = 0
    seen: list[SocketListener] = []

    async def watch() -> None:
        nonlocal most_waiting
        while True:
            relay = hub.relays.get(int(room["id"]))
            for listener in relay.listeners if relay else ():
                assert isinstance(listener, SocketListener)
                if listener not in seen:
                    seen.append(listener)
            for listener in seen:
                if listener.closed is None:
                    most_waiting = max(most_waiting, listener.transport.get_write_buffer_size())
            await asyncio.sleep(0.002)

    watching = asyncio.create_task(watch())
    skipped_before = hub.stats.skipped
    try:
        await wait_for(lambda: len(seen) == 1)
        # A slow path to the listener: the kernel takes little of what is written (on
        # loopback it would otherwise hold megabytes before the relay's budget counted).
        server_side = seen[0].transport.get_extra_info("socket")
        server_side.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
        speak = f"ws://{tcp_server}/api/v1/rooms/{room['id']}/speak?access_token={alice.token}"
        async with connect(speak) as speaker:
            for position in range(0, len(data), 1000):
                await speaker.send(data[position : position + 1000])
                await asyncio.sleep(0.003)
        await wait_for(lambda: bool(seen) and seen[0].closed is not None, 20)
    finally:
        watching.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watching
        frozen.close()
    listener = seen[0]
    assert listener.closed == "too slow"
    assert hub.stats.skipped > skipped_before
    # Room events (speaking, listener counts) may go past the budget; they are a few dozen
    # bytes each, and the budget allows four times over for them.
    assert most_waiting <= settings.rooms_listener_buffer_bytes + largest + 1024
