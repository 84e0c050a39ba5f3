"""Apps with the shield tuned tight enough to see it act, and clients from chosen addresses."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

import httpx
import pytest
import uvicorn
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from starlette.types import ASGIApp, Receive, Scope, Send

from townsquare.app import create_app
from townsquare.config import Settings
from townsquare.shield import server
from townsquare.shield.mode import set_forced_mode
from townsquare.shield.server import GuardedHttpToolsProtocol, uvicorn_options
from townsquare.shield.state import ShieldState
from townsquare.state import state_of

AppFactory = Callable[..., Awaitable[FastAPI]]


@pytest.fixture(autouse=True)
def prompt_refusals(monkeypatch: pytest.MonkeyPatch) -> None:
    """Refusals over a rate are written a moment after the accept, not 3 s, and refusals
    asked for again at once a moment later, not 1 s: what a client is told is the same, the
    tests just wait less for it."""
    monkeypatch.setattr(server, "REFUSAL_DELAY", 0.05)
    monkeypatch.setattr(server, "REPEAT_DELAY", 0.05)


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """The shared test settings, with puzzles small enough to solve in a blink."""
    return settings.model_copy(update={"shield_pow_difficulty": 8})


@pytest.fixture
async def shielded(settings: Settings) -> AsyncIterator[AppFactory]:
    """Builds an app whose settings are the test settings with the given overrides."""
    managers: list[LifespanManager] = []

    async def factory(**overrides: Any) -> FastAPI:
        application = create_app(settings.model_copy(update=overrides), migrate=False)
        manager = LifespanManager(application)
        await manager.__aenter__()
        managers.append(manager)
        return application

    yield factory
    for manager in reversed(managers):
        await manager.__aexit__(None, None, None)


def shield_of(app: FastAPI) -> ShieldState:
    shield = state_of(app).extras["shield"]
    assert isinstance(shield, ShieldState)
    return shield


def client_from(
    app: FastAPI, address: str = "127.0.0.1", headers: dict[str, str] | None = None
) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app, client=(address, 40_000)),
        base_url="http://testserver",
        headers=headers,
    )


def pin_concurrency(app: FastAPI, slots: int, deadlines: tuple[float, float, float]) -> None:
    """Serve exactly ``slots`` requests at once, whatever the latency, with these deadlines."""
    shield = shield_of(app)
    limit = shield.limit
    limit.minimum = limit.maximum = limit.limit = slots
    shield.queue.deadlines = deadlines


def under_attack(app: FastAPI, choice: str = "on") -> None:
    shield = shield_of(app)
    set_forced_mode(shield.settings, choice)
    shield.mode.refresh()


async def hello_app(scope: Scope, receive: Receive, send: Send) -> None:
    """The smallest app behind a guarded server: "ok" to every HTTP request."""
    if scope["type"] != "http":
        return
    await send(
        {"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"2")]}
    )
    await send({"type": "http.response.body", "body": b"ok"})


def read_all(conn: socket.socket) -> bytes:
    """Everything until the server closes the connection (or resets it)."""
    chunks = []
    try:
        while chunk := conn.recv(65536):
            chunks.append(chunk)
    except ConnectionResetError:
        pass
    return b"".join(chunks)


@contextlib.contextmanager
def guarded_server(app: ASGIApp, settings: Settings) -> Iterator[tuple[str, int]]:
    """``app`` under uvicorn with the shield's connection layer, in a thread, on a free loopback
    port; stopped, and the layer's limits forgotten, on the way out."""
    config = uvicorn.Config(app, lifespan="off", log_level="critical", **uvicorn_options(settings))
    instance = uvicorn.Server(config)
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    thread = threading.Thread(target=instance.run, kwargs={"sockets": [listener]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 5
    while not instance.started and time.monotonic() < deadline:
        time.sleep(0.01)
    assert instance.started
    try:
        yield listener.getsockname()
    finally:
        instance.should_exit = True
        thread.join(5)
        listener.close()
        GuardedHttpToolsProtocol.limits = None
