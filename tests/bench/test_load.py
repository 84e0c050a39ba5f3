"""The open-loop load generator against a small HTTP/1.1 server on loopback."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from bench.load import _open_load


class Server:
    """Answers GETs with a Content-Length; every ``fail_every``-th with a 503, and closes the
    connection after every ``close_every``-th answer (as a server's keep-alive limit does)."""

    def __init__(self, fail_every: int = 0, close_every: int = 0) -> None:
        self.fail_every = fail_every
        self.close_every = close_every
        self.requests = 0
        self.connections = 0
        self.tokens: set[bytes] = set()

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                self.requests += 1
                self.tokens.add(head.split(b"Bearer ")[1].split(b"\r\n")[0])
                failing = self.fail_every and self.requests % self.fail_every == 0
                body = b'{"error": "busy"}' if failing else b"[" + b'{"id": "1"},' * 500 + b"{}]"
                status = b"503 Service Unavailable" if failing else b"200 OK"
                writer.write(
                    b"HTTP/1.1 " + status + b"\r\ncontent-type: application/json\r\n"
                    b"content-length: " + str(len(body)).encode() + b"\r\n\r\n" + body
                )
                await writer.drain()
                if self.close_every and self.requests % self.close_every == 0:
                    break
        except asyncio.IncompleteReadError:
            pass
        finally:
            writer.close()


@pytest.fixture
async def serve() -> AsyncIterator[tuple[Server, str]]:
    server = Server()
    listening = await asyncio.start_server(server.handle, "127.0.0.1", 0)
    port = listening.sockets[0].getsockname()[1]
    yield server, f"http://127.0.0.1:{port}"
    listening.close()


async def test_every_request_is_sent_on_schedule_and_answered(
    serve: tuple[Server, str],
) -> None:
    server, url = serve
    result = await _open_load(url, "/home", ["a", "b", "c"], 0.5, 200, 4)
    assert (result.requests, result.failed, server.requests) == (100, 0, 100)
    assert server.connections == 4
    assert server.tokens == {b"a", b"b", b"c"}
    assert result.per_second == pytest.approx(200, rel=0.1)
    assert 0 < result.p50_ms < 100


async def test_error_answers_count_as_failed(serve: tuple[Server, str]) -> None:
    server, url = serve
    server.fail_every = 10
    result = await _open_load(url, "/home", ["a"], 0.5, 200, 4)
    assert (result.requests, result.failed) == (100, 10)


async def test_connections_closed_by_the_server_are_opened_again(
    serve: tuple[Server, str],
) -> None:
    server, url = serve
    server.close_every = 7
    result = await _open_load(url, "/home", ["a"], 0.5, 200, 4)
    assert result.requests == 100
    assert server.requests >= 100
    assert server.connections > 4
    # An answer completes before the server closes; only a request sent on a connection the
    # server was closing at that moment fails.
    assert result.failed <= server.connections - 4
