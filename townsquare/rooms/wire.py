"""Room frames written straight to listeners' sockets, framed once for all of them.

Through ASGI, every message to every listener wakes a task and goes down a chain of ``send``
calls (Starlette, the error handlers, uvicorn), and uvicorn frames it again for each
connection. A Cluster is the same bytes for every listener of a room, so the relay frames it
once as a WebSocket message (:func:`binary_message`) and writes that to each listener's
transport in one loop, as a bare broadcast server does.

ASGI does not hand an application its connection's transport, so :class:`RoomsWebSocketProtocol`
(uvicorn's own WebSocket protocol, which ``townsquare serve`` runs) offers it as the scope
extension ``townsquare.websocket.transport``. Where it is missing (another server, or a test
talking to the app in-process) the relay falls back to the ASGI ``send`` path.

Frames from a server are not masked, so one frame is right for every connection. A connection
that agreed on permessage-deflate may still be sent uncompressed messages (RFC 7692: only
messages with RSV1 set are compressed), and writing whole frames between the protocol's own
(pings, the close frame) keeps the stream well formed.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping
from typing import Any, Protocol, cast

from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.http11 import Request

EXTENSION = "townsquare.websocket.transport"
TEXT = 0x1
BINARY = 0x2
_FIN = 0x80
_MEDIUM = struct.Struct("!BBH")
_LONG = struct.Struct("!BBQ")


def message(opcode: int, payload: bytes) -> bytes:
    """One whole, unmasked WebSocket message (a single frame with FIN set)."""
    size = len(payload)
    if size < 126:
        head = bytes((_FIN | opcode, size))
    elif size < 1 << 16:
        head = _MEDIUM.pack(_FIN | opcode, 126, size)
    else:
        head = _LONG.pack(_FIN | opcode, 127, size)
    return head + payload


def binary_message(payload: bytes) -> bytes:
    return message(BINARY, payload)


def text_message(text: str) -> bytes:
    return message(TEXT, text.encode())


class Transport(Protocol):
    """What the relay uses of a connection's transport (asyncio's, or uvloop's, which does not
    derive from asyncio's classes)."""

    def write(self, data: bytes) -> None: ...
    def get_write_buffer_size(self) -> int: ...
    def is_closing(self) -> bool: ...
    def abort(self) -> None: ...


def transport_of(scope: Mapping[str, Any]) -> Transport | None:
    """The connection's transport, where the server offers it."""
    offered = scope.get("extensions", {}).get(EXTENSION)
    transport = offered.get("transport") if offered else None
    if transport is None or not hasattr(transport, "get_write_buffer_size"):
        return None
    return cast(Transport, transport)


class RoomsWebSocketProtocol(WebSocketsSansIOProtocol):
    """uvicorn's WebSocket protocol, offering the connection's transport to the application."""

    def handle_connect(self, event: Request) -> None:
        super().handle_connect(event)
        # The scope exists only when the handshake goes on to the application; its task has
        # not run yet, so the extension is there before the application looks.
        scope = getattr(self, "scope", None)
        if scope is not None:
            scope["extensions"][EXTENSION] = {"transport": self.transport}
