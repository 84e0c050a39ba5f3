"""Against a real uvicorn server on a loopback port: what a Mastodon library and a WebSocket
client see, and how quickly open streams let the server stop."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import socket
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from tests.conftest import Person
from tests.streaming.conftest import WAIT, Post
from townsquare.app import create_app
from townsquare.config import Settings
from townsquare.state import state_of
from townsquare.streaming.hub import hub_of


@dataclass
class Served:
    url: str
    app: FastAPI
    server: uvicorn.Server
    task: asyncio.Task[None]

    def open_streams(self) -> int:
        return len(hub_of(state_of(self.app)).registry)

    async def wait_for_streams(self, count: int) -> None:
        deadline = time.monotonic() + WAIT
        while self.open_streams() < count:
            assert time.monotonic() < deadline, "the stream never opened"
            await asyncio.sleep(0.01)


@pytest.fixture
async def served(settings: Settings, app: FastAPI) -> AsyncIterator[Served]:
    # uvicorn raises again, after it stopped, the signals it caught; only a harmless handler
    # may be waiting for that inside the test process.
    previous = signal.signal(signal.SIGTERM, lambda *_: None)
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    settings.domain = f"127.0.0.1:{port}"
    # A second worker on the same database, started by the server as in production, so its
    # signal hook sits on top of uvicorn's.
    worker = create_app(settings, migrate=False)
    config = uvicorn.Config(
        worker, lifespan="on", ws="websockets-sansio", log_config=None, log_level="warning"
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(sockets=[listener]))
    try:
        deadline = time.monotonic() + WAIT
        while not server.started:
            assert not task.done(), "the server did not start"
            assert time.monotonic() < deadline
            await asyncio.sleep(0.01)
        yield Served(f"http://127.0.0.1:{port}", worker, server, task)
    finally:
        server.should_exit = True
        with contextlib.suppress(Exception):
            await asyncio.wait_for(task, 10)
        listener.close()
        signal.signal(signal.SIGTERM, previous)


class _Received(Exception):
    pass


def _stream_public_with_mastodon_py(url: str, token: str, received: list[Any]) -> None:
    from mastodon import Mastodon, StreamListener

    class Listener(StreamListener):  # type: ignore[misc]
        def on_update(self, status: Any) -> None:
            received.append(status)
            raise _Received

    api = Mastodon(access_token=token, api_base_url=url, version_check_mode="none")
    with contextlib.suppress(_Received):
        api.stream_public(Listener(), timeout=WAIT)


async def test_mastodon_py_receives_a_new_public_status(
    served: Served, alice: Person, bob: Person, post: Post
) -> None:
    received: list[Any] = []
    client = asyncio.create_task(
        asyncio.to_thread(_stream_public_with_mastodon_py, served.url, bob.token, received)
    )
    await served.wait_for_streams(1)
    status_id = await post(alice, "hello, library")
    await asyncio.wait_for(client, WAIT)
    assert [str(status["id"]) for status in received] == [str(status_id)]
    assert received[0]["account"]["acct"] == "alice"


async def test_websocket_over_a_real_server(served: Served, alice: Person, post: Post) -> None:
    ws_url = served.url.replace("http://", "ws://") + "/api/v1/streaming"
    with pytest.raises(InvalidStatus) as refused:
        async with connect(f"{ws_url}?stream=public&access_token=forged"):
            pass
    assert refused.value.response.status_code == 401

    async with connect(f"{ws_url}?stream=public", subprotocols=[alice.token]) as websocket:  # type: ignore[list-item]
        assert websocket.subprotocol == alice.token
        await served.wait_for_streams(1)
        status_id = await post(alice, "over a real socket")
        message = await asyncio.wait_for(websocket.recv(), WAIT)
    assert f'\\"id\\":\\"{status_id}\\"' in str(message)


async def test_sigterm_closes_open_streams_so_the_server_stops_at_once(
    served: Served, alice: Person
) -> None:
    async with (
        httpx.AsyncClient(base_url=served.url, timeout=WAIT) as http,
        http.stream("GET", "/api/v1/streaming/public", headers=alice.headers) as response,
    ):
        assert response.status_code == 200
        await served.wait_for_streams(1)
        started = time.monotonic()
        signal.raise_signal(signal.SIGTERM)
        # Without the hook the heartbeats would go on until the server's graceful timeout.
        lines = await asyncio.wait_for(_all_lines(response), WAIT)
    await asyncio.wait_for(served.task, WAIT)
    assert time.monotonic() - started < WAIT
    assert lines[0] == ":)"


async def _all_lines(response: httpx.Response) -> list[str]:
    return [line async for line in response.aiter_lines()]
