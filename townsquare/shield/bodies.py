"""Request bodies read before a request is admitted, so slow uploads cannot hold worker slots.

A body other than a media upload (the usual JSON or form, capped by the connection layer) is
read completely while the request waits outside the admission queue, as a buffering proxy
would; the app then gets it in one piece. A client that trickles it slowly only holds its own
connection, and the connection layer's body deadline ends that. Media uploads are streamed to
the app as usual, and the time spent waiting for them is left out of the latency that steers
the concurrency limit.
"""

from __future__ import annotations

import time

from starlette.types import Message, Receive, Scope

PREBUFFER_LIMIT = 64 * 1024


def declared_length(scope: Scope) -> int | None:
    for name, value in scope["headers"]:
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


class BufferedBody:
    """A ``receive`` that replays a body read whole (``body``), then reads on."""

    __slots__ = ("body", "first", "receive")

    def __init__(self, receive: Receive, body: bytes, more_body: bool) -> None:
        self.receive = receive
        self.body = body
        self.first: Message | None = {"type": "http.request", "body": body, "more_body": more_body}

    async def __call__(self) -> Message:
        if self.first is not None:
            message, self.first = self.first, None
            return message
        return await self.receive()


async def read_small_body(receive: Receive, limit: int = PREBUFFER_LIMIT) -> BufferedBody | None:
    """A ``receive`` that replays the whole body, or None when the client went away."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return None
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            # More than declared: let the app (and its parser) refuse it.
            chunks.append(chunk)
            break
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return BufferedBody(receive, b"".join(chunks), size > limit)


class TimedReceive:
    """A ``receive`` that adds up the seconds spent waiting on the client."""

    __slots__ = ("receive", "waited")

    def __init__(self, receive: Receive) -> None:
        self.receive = receive
        self.waited = 0.0

    async def __call__(self) -> Message:
        started = time.monotonic()
        message = await self.receive()
        self.waited += time.monotonic() - started
        return message
