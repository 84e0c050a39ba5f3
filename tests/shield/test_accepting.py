"""New connections are taken off the kernel's accept queue in batches, not one per turn of a
busy event loop. A real uvicorn server (uvloop) on loopback, real sockets."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.types import Receive, Scope, Send

from tests.shield.conftest import guarded_server, read_all
from townsquare.config import Settings
from townsquare.shield import accepting
from townsquare.shield.accepting import AcceptQueue

# Each turn of the server's loop lasts at least this long while it is kept busy.
TURN = 0.01
CONNECTIONS = 150


def keep_busy(loop: asyncio.AbstractEventLoop, until: float) -> None:
    time.sleep(TURN)  # the work of one turn, as a flood's ready connections make it
    if time.monotonic() < until:
        loop.call_soon(keep_busy, loop, until)


async def busy_app(scope: Scope, receive: Receive, send: Send) -> None:
    """ "ok" to every request; ``/busy`` also keeps the loop busy for 3 seconds."""
    if scope["type"] != "http":
        return
    if scope["path"] == "/busy":
        loop = asyncio.get_running_loop()
        loop.call_soon(keep_busy, loop, time.monotonic() + 3.0)
    await send(
        {"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"2")]}
    )
    await send({"type": "http.response.body", "body": b"ok"})


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[str, int]]:
    settings = Settings(
        data_dir=tmp_path,
        secret_key="test-secret",
        server_connection_rate_per_address="10000/10 seconds",
        server_connection_rate_per_prefix="10000/10 seconds",
        server_max_connections_per_address=1000,
        server_lag_threshold=0,
    )
    with guarded_server(busy_app, settings) as address:
        yield address


def request(server: tuple[str, int], path: str) -> socket.socket:
    conn = socket.create_connection(server, timeout=5)
    conn.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
    return conn


def test_a_busy_worker_takes_waiting_connections_in_batches(server: tuple[str, int]) -> None:
    taken = accepting.accept_queue.taken
    with request(server, "/busy") as conn:
        assert read_all(conn).endswith(b"ok")
    started = time.monotonic()
    # Queued in the kernel while the loop is busy: one per turn would take 1.5 s to accept.
    waiting = [request(server, "/") for _ in range(CONNECTIONS)]
    try:
        answers = [read_all(conn) for conn in waiting]
    finally:
        for conn in waiting:
            conn.close()
    elapsed = time.monotonic() - started
    assert all(answer.endswith(b"ok") for answer in answers)
    assert accepting.accept_queue.taken - taken >= CONNECTIONS // 2
    assert elapsed < CONNECTIONS * TURN / 2


def test_nothing_is_taken_from_an_address_nobody_listens_on() -> None:
    queue = AcceptQueue()
    with socket.socket() as bound:
        bound.bind(("127.0.0.1", 0))  # bound, not listening
        assert queue.take(bound.getsockname()) == []
    assert queue.take(("127.0.0.1", 1)) == []
    assert queue.taken == 0


def test_a_closed_listening_socket_is_not_kept_open() -> None:
    queue = AcceptQueue()
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    listener.setblocking(False)
    address = listener.getsockname()
    with socket.create_connection(address, timeout=5):
        taken = queue.take(address)
        assert len(taken) == 1
        taken[0].close()
    listener.close()
    # Nobody listens any more: a new connection is refused, not queued on a borrowed socket.
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(address, timeout=5)
    assert queue.take(address) == []
