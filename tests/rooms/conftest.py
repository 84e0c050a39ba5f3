"""Rooms in-process: the REST API through httpx, the two WebSockets through httpx-ws."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
import uvicorn
from fastapi import FastAPI
from httpx_ws import AsyncWebSocketSession

from tests.conftest import Person
from tests.postgres_server import free_port
from tests.streaming.conftest import WebSocketApp, connect_ws
from tests.streaming.conftest import ws as ws
from townsquare.rooms import frames
from townsquare.rooms.hub import RoomHub, hub_of
from townsquare.rooms.wire import RoomsWebSocketProtocol
from townsquare.state import state_of

# An upper bound for anything in-process, generous for a machine shared with other suites.
WAIT = 15.0
__all__ = ["WAIT", "Room", "connect_ws", "next_frame", "wait_for"]

Room = dict[str, Any]
OpenRoom = Callable[..., Awaitable[Room]]


@pytest.fixture
def hub(app: FastAPI) -> RoomHub:
    return hub_of(state_of(app))


@pytest.fixture
async def tcp_server(app: FastAPI) -> AsyncIterator[str]:
    """The app behind a real uvicorn on a loopback port, with the protocol ``townsquare serve``
    runs: the relay writes to the listeners' sockets itself."""
    port = free_port()
    # A ping queued behind seconds of unread audio finds a frozen listener (kernel buffers
    # on loopback hold megabytes, so the relay's own buffer would fill only much later).
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=port,
        lifespan="off",
        log_level="warning",
        ws=RoomsWebSocketProtocol,
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


@pytest.fixture
def open_room() -> OpenRoom:
    async def create(host: Person, title: str = "Morning chat", **params: Any) -> Room:
        response = await host.client.post("/api/v1/rooms", json={"title": title, **params})
        assert response.status_code == 200, response.text
        room: Room = response.json()
        return room

    return create


async def wait_for(check: Callable[[], bool], within: float = WAIT) -> None:
    deadline = time.monotonic() + within
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.01)


async def next_frame(session: AsyncWebSocketSession) -> tuple[int, int, bytes] | dict[str, Any]:
    """The next media frame as (kind, track, payload), or the next room event as a dict."""
    while True:
        message = await asyncio.wait_for(session.receive(), WAIT)
        if isinstance(message.data, bytes):
            return frames.parse_frame(message.data)
        import json

        event: dict[str, Any] = json.loads(message.data)
        if event.get("type") not in ("keepalive", "listeners"):
            return event


def listeners_in(hub: RoomHub, room: Room) -> int:
    relay = hub.relays.get(int(room["id"]))
    return len(relay.listeners) if relay else 0


def listen_url(room: Room, person: Person | None = None) -> str:
    token = f"?access_token={person.token}" if person else ""
    return f"/api/v1/rooms/{room['id']}/listen{token}"


def speak_url(room: Room, person: Person) -> str:
    return f"/api/v1/rooms/{room['id']}/speak?access_token={person.token}"


WS = WebSocketApp
