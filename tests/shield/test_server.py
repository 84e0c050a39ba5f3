"""The connection layer, against a real uvicorn server on a loopback port, with raw sockets."""

from __future__ import annotations

import contextlib
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.types import Receive, Scope, Send

from tests.shield.conftest import guarded_server, read_all
from townsquare.config import Settings
from townsquare.shield.server import GuardedHttpToolsProtocol, uvicorn_options


async def echo_app(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] != "http":
        return
    size = 0
    while True:
        message = await receive()
        size += len(message.get("body", b""))
        if not message.get("more_body"):
            break
    body = f"ok {size}".encode()
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[str, int]]:
    tight = Settings(
        data_dir=tmp_path,
        secret_key="test-secret",
        server_header_timeout=1.0,
        server_body_timeout=0.5,
        server_body_min_rate=1000,
        server_max_header_bytes=2048,
        server_max_body_bytes=1000,
        rate_limit_streaming_address="2/minute",
        server_max_connections_per_address=4,
        server_keep_alive=5,
    )
    assert uvicorn_options(tight)["http"] is GuardedHttpToolsProtocol
    with guarded_server(echo_app, tight) as address:
        yield address


def connect(address: tuple[str, int]) -> socket.socket:
    conn = socket.create_connection(address, timeout=5)
    return conn


def get(address: tuple[str, int]) -> bytes:
    with connect(address) as conn:
        conn.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        return read_all(conn)


def test_a_normal_request_is_served(server: tuple[str, int]) -> None:
    assert get(server).startswith(b"HTTP/1.1 200") and get(server).endswith(b"ok 0")


def test_slowloris_is_cut_off_at_the_header_deadline_while_others_are_served(
    server: tuple[str, int],
) -> None:
    slow = connect(server)
    started = time.monotonic()
    slow.sendall(b"GET / HTTP/1.1\r\n")
    header = b"X-Padding: " + b"a" * 100
    closed_at = None
    served_meanwhile = 0
    for byte in header:
        try:
            slow.sendall(bytes([byte]))
        except (BrokenPipeError, ConnectionResetError):
            closed_at = time.monotonic()
            break
        slow.settimeout(0.1)
        try:
            if slow.recv(65536) is not None:
                closed_at = time.monotonic()
                break
        except TimeoutError:
            pass
        if get(server).startswith(b"HTTP/1.1 200"):
            served_meanwhile += 1
    slow.close()
    assert closed_at is not None, "the slow client was never disconnected"
    assert 0.9 <= closed_at - started <= 3.0
    assert served_meanwhile >= 3


def test_a_silent_connection_is_closed_at_the_deadline(server: tuple[str, int]) -> None:
    with connect(server) as conn:
        started = time.monotonic()
        assert read_all(conn) == b""
        assert 0.9 <= time.monotonic() - started <= 3.0


def test_a_keep_alive_connection_gets_a_new_deadline_for_each_head(
    server: tuple[str, int],
) -> None:
    with connect(server) as conn:
        conn.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        assert conn.recv(65536).startswith(b"HTTP/1.1 200")
        time.sleep(0.6)
        conn.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n")  # and then nothing more
        started = time.monotonic()
        answer = read_all(conn)
        assert answer.startswith(b"HTTP/1.1 408")
        assert time.monotonic() - started <= 3.0


def test_a_body_trickled_too_slowly_is_cut_off(server: tuple[str, int]) -> None:
    with connect(server) as conn:
        # 100 bytes at 1000 B/s after a 0.5 s grace: 0.6 s to deliver them.
        conn.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n")
        started = time.monotonic()
        closed = False
        for _ in range(100):
            try:
                conn.sendall(b"a")
            except (BrokenPipeError, ConnectionResetError):
                closed = True
                break
            conn.settimeout(0.1)
            try:
                if conn.recv(65536) is not None:
                    closed = True
                    break
            except TimeoutError:
                pass
        assert closed
        assert time.monotonic() - started <= 3.0

    with connect(server) as conn:
        conn.sendall(
            b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\nConnection: close\r\n\r\n"
            + b"a" * 100
        )
        assert read_all(conn).endswith(b"ok 100")


def test_an_oversized_head_is_refused(server: tuple[str, int]) -> None:
    with connect(server) as conn:
        conn.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"b" * 4096 + b"\r\n\r\n")
        assert read_all(conn).startswith(b"HTTP/1.1 431")


def test_connections_beyond_the_per_address_cap_are_closed_at_once(
    server: tuple[str, int],
) -> None:
    held = [connect(server) for _ in range(4)]
    try:
        time.sleep(0.1)
        with connect(server) as excess:
            started = time.monotonic()
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                excess.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            assert read_all(excess) == b""
            assert time.monotonic() - started < 2.0
    finally:
        for conn in held:
            conn.close()
    time.sleep(0.1)
    assert get(server).startswith(b"HTTP/1.1 200")


def test_a_body_over_the_cap_is_refused_before_it_is_read(server: tuple[str, int]) -> None:
    with connect(server) as conn:
        conn.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\n\r\n")
        answer = read_all(conn)
    assert answer.startswith(b"HTTP/1.1 413")
    assert answer.endswith(b'{"error":"The request body is too large"}')

    # A chunked body declares no length: it is counted as it arrives.
    with connect(server) as conn:
        conn.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            for _ in range(4):
                conn.sendall(b"190\r\n" + b"c" * 400 + b"\r\n")
        assert read_all(conn).startswith(b"HTTP/1.1 413")


def test_media_uploads_may_be_larger(server: tuple[str, int]) -> None:
    with connect(server) as conn:
        conn.sendall(
            b"POST /api/v2/media HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\n"
            b"Connection: close\r\n\r\n" + b"m" * 5000
        )
        assert read_all(conn).endswith(b"ok 5000")


def test_websocket_handshakes_beyond_the_rate_are_refused_before_the_app(
    server: tuple[str, int],
) -> None:
    handshake = (
        b"GET /api/v1/streaming HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
        b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
        b"Sec-WebSocket-Version: 13\r\n\r\n"
    )
    answers = []
    for _ in range(3):
        with connect(server) as conn:
            conn.sendall(handshake)
            conn.settimeout(5)
            answers.append(conn.recv(65536))
    # The echo app ignores WebSockets, so the first two are refused by uvicorn in its own way.
    assert not any(answer.startswith(b"HTTP/1.1 429") for answer in answers[:2])
    assert answers[2].startswith(b"HTTP/1.1 429")
    assert b"retry-after: 10" in answers[2]
    # Plain requests from the same address are not affected.
    assert get(server).startswith(b"HTTP/1.1 200")
