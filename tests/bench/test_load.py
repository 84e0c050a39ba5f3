"""The open-loop load generator against a small HTTP/1.1 server on loopback."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from bench.load import LoadResult, run_open_load


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
def serve() -> Iterator[tuple[Server, str]]:
    """The server on an event loop of its own, in a thread: the generator runs its own (uvloop)."""
    server = Server()
    loop = asyncio.new_event_loop()
    listening = loop.run_until_complete(asyncio.start_server(server.handle, "127.0.0.1", 0))
    port = listening.sockets[0].getsockname()[1]
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    yield server, f"http://127.0.0.1:{port}"

    async def close() -> None:
        listening.close()
        handlers = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
        for task in handlers:
            task.cancel()
        await asyncio.gather(*handlers, return_exceptions=True)

    asyncio.run_coroutine_threadsafe(close(), loop).result(timeout=10)
    loop.call_soon_threadsafe(loop.stop)
    thread.join()
    loop.close()


def load(url: str, tmp_path: Path, tokens: list[str], connections: int = 4) -> LoadResult:
    tokens_file = tmp_path / "tokens.txt"
    tokens_file.write_text("".join(f"user{i} {token}\n" for i, token in enumerate(tokens)))
    return run_open_load(url, "/home", tokens_file, seconds=0.5, rate=200, connections=connections)


def test_every_request_is_sent_on_schedule_and_answered(
    serve: tuple[Server, str], tmp_path: Path
) -> None:
    server, url = serve
    result = load(url, tmp_path, ["a", "b", "c"])
    assert (result.requests, result.failed, server.requests) == (100, 0, 100)
    assert server.connections == 4
    assert server.tokens == {b"a", b"b", b"c"}
    assert result.per_second == pytest.approx(200, rel=0.1)
    assert 0 < result.p50_ms < 100


def test_error_answers_count_as_failed(serve: tuple[Server, str], tmp_path: Path) -> None:
    server, url = serve
    server.fail_every = 10
    result = load(url, tmp_path, ["a"])
    assert (result.requests, result.failed) == (100, 10)


def test_connections_closed_by_the_server_are_opened_again(
    serve: tuple[Server, str], tmp_path: Path
) -> None:
    server, url = serve
    server.close_every = 7
    result = load(url, tmp_path, ["a"])
    assert result.requests == 100
    assert server.requests >= 100
    assert server.connections > 4
    # An answer completes before the server closes; only a request sent on a connection the
    # server was closing at that moment fails.
    assert result.failed <= server.connections - 4
