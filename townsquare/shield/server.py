"""The connection layer: deadlines and caps uvicorn does not enforce by itself.

uvicorn waits for a request head for as long as the client keeps trickling bytes, so a
slowloris client (one header byte a second) holds a connection for ever, and a few thousand of
them exhaust the worker. :class:`GuardedHttpToolsProtocol` gives every connection a deadline for
its request head (from the connection's start, or from the end of the previous response), a
deadline for its body (a grace period plus the time the body takes at a minimum rate), a cap on
the size of the head, and a cap on the connections one address holds open at once.

``townsquare serve`` passes :func:`uvicorn_options` to ``uvicorn.run``.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any, ClassVar

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from townsquare.config import Settings
from townsquare.shield.addresses import ForwardedFor
from townsquare.shield.state import rate


@dataclass(frozen=True)
class ConnectionLimits:
    header_timeout: float
    body_timeout: float
    body_min_rate: int
    max_header_bytes: int
    max_body_bytes: int
    max_upload_bytes: int
    max_per_address: int
    upgrades_per_period: int
    upgrade_period: float
    # Reverse proxies carry many clients on few connections: the app counts those clients by
    # their forwarded address, so the per-address caps here do not apply to the proxies.
    proxies: ForwardedFor

    @classmethod
    def from_settings(cls, settings: Settings) -> ConnectionLimits:
        return cls(
            header_timeout=settings.server_header_timeout,
            body_timeout=settings.server_body_timeout,
            body_min_rate=max(1, settings.server_body_min_rate),
            max_header_bytes=settings.server_max_header_bytes,
            max_body_bytes=settings.server_max_body_bytes,
            max_upload_bytes=settings.max_image_bytes + UPLOAD_FORM_OVERHEAD,
            max_per_address=settings.server_max_connections_per_address,
            # The app counts openings per address and token (rate_limit_streaming*); this
            # coarser count per worker refuses a handshake flood before it costs more.
            upgrades_per_period=rate(settings.rate_limit_streaming_address)[0]
            if settings.rate_limits_enabled
            else 1 << 30,
            upgrade_period=rate(settings.rate_limit_streaming_address)[1],
            proxies=ForwardedFor(settings.shield_trusted_proxies),
        )


# Media uploads may be as large as an image plus the multipart form around it.
UPLOAD_PATHS = (b"/api/v1/media", b"/api/v2/media")
UPLOAD_FORM_OVERHEAD = 64 * 1024

# The longest a chunked body (no Content-Length to size its deadline by) may take.
CHUNKED_BODY_FACTOR = 6


def _response(status: bytes, message: bytes) -> bytes:
    body = b'{"error":"' + message + b'"}'
    return (
        b"HTTP/1.1 " + status + b"\r\ncontent-type: application/json\r\n"
        b"content-length: " + str(len(body)).encode() + b"\r\nconnection: close\r\n\r\n" + body
    )


REQUEST_TIMEOUT = _response(b"408 Request Timeout", b"The request took too long to arrive")
HEAD_TOO_LARGE = _response(
    b"431 Request Header Fields Too Large", b"The request headers are too large"
)
BODY_TOO_LARGE = _response(b"413 Content Too Large", b"The request body is too large")
TOO_MANY_HANDSHAKES = _response(
    b"429 Too Many Requests\r\nretry-after: 10",
    b"Too many streaming connections opened; try again later",
)
MAX_TRACKED_ADDRESSES = 100_000


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    limits: ClassVar[ConnectionLimits | None] = None
    # Open connections per client address, for this worker process.
    open_connections: ClassVar[dict[str, int]] = {}
    # WebSocket handshakes per client address: [window start, count], for this worker process.
    upgrades: ClassVar[dict[str, list[float]]] = {}

    @classmethod
    def configure(cls, settings: Settings) -> None:
        cls.limits = ConnectionLimits.from_settings(settings)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if GuardedHttpToolsProtocol.limits is None:
            # A worker process started by uvicorn's supervisor: settings come from the
            # environment, as they do for the app itself.
            GuardedHttpToolsProtocol.configure(Settings())
        assert GuardedHttpToolsProtocol.limits is not None
        self.guard = GuardedHttpToolsProtocol.limits
        self.address: str | None = None
        self.reading_head = True
        self.head_bytes = 0
        self.body_bytes = 0
        self.max_body = self.guard.max_body_bytes
        self.head_deadline: asyncio.TimerHandle | None = None
        self.body_deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        address = self.client[0] if self.client else None
        if address is not None and not self.guard.proxies.trusts(address):
            count = self.open_connections.get(address, 0) + 1
            self.open_connections[address] = count
            self.address = address
            if count > self.guard.max_per_address:
                # Closed before a byte is read: the excess costs a socket accept and no more.
                transport.abort()
                return
        self._arm_head_deadline()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_deadlines()
        self._release_address()
        super().connection_lost(exc)

    def _release_address(self) -> None:
        if self.address is not None:
            remaining = self.open_connections.get(self.address, 1) - 1
            if remaining > 0:
                self.open_connections[self.address] = remaining
            else:
                self.open_connections.pop(self.address, None)
            self.address = None

    def handle_websocket_upgrade(self) -> None:
        if self.address is not None and not self._may_upgrade(self.address):
            # Refused here, before a WebSocket protocol, a scope or the app exist for it: a
            # handshake flood costs a parsed request head each.
            self._cancel_deadlines()
            self._refuse(TOO_MANY_HANDSHAKES)
            return
        # The WebSocket protocol takes the transport over; its own limits apply from here.
        self._cancel_deadlines()
        self._release_address()
        super().handle_websocket_upgrade()

    def data_received(self, data: bytes) -> None:
        if self.reading_head:
            if self.head_bytes + len(data) > self.guard.max_header_bytes and not self._head_fits(
                data
            ):
                self._refuse(HEAD_TOO_LARGE)
                return
            self.head_bytes += len(data)
        super().data_received(data)

    def _head_fits(self, data: bytes) -> bool:
        """Whether the head ends within its size cap in ``data`` (a body may follow it)."""
        room = self.guard.max_header_bytes - self.head_bytes
        # The blank line may straddle the previous chunk (whose bytes are already counted).
        end = data.find(b"\r\n\r\n", 0, max(0, room))
        return end != -1 and end + 4 <= room

    def on_headers_complete(self) -> None:
        self.reading_head = False
        self.head_bytes = 0
        if self.head_deadline is not None:
            self.head_deadline.cancel()
            self.head_deadline = None
        super().on_headers_complete()
        self.body_bytes = 0
        path = self.url.partition(b"?")[0]
        uploading = path in UPLOAD_PATHS
        self.max_body = self.guard.max_upload_bytes if uploading else self.guard.max_body_bytes
        length = self._declared_length()
        if length is not None and length > self.max_body:
            self._refuse(BODY_TOO_LARGE)
            return
        seconds = self._body_seconds()
        if seconds is not None and not self.transport.is_closing():
            self.body_deadline = self.loop.call_later(seconds, self._refuse, REQUEST_TIMEOUT)

    def on_body(self, body: bytes) -> None:
        if self.transport.is_closing():
            return
        # Chunked bodies declare no length: count them as they come.
        self.body_bytes += len(body)
        if self.body_bytes > self.max_body:
            self._refuse(BODY_TOO_LARGE)
            return
        super().on_body(body)

    def on_message_complete(self) -> None:
        if self.body_deadline is not None:
            self.body_deadline.cancel()
            self.body_deadline = None
        self.reading_head = True
        super().on_message_complete()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing():
            self._arm_head_deadline()

    def _may_upgrade(self, address: str) -> bool:
        """Count one WebSocket handshake from ``address`` in this worker's fixed window."""
        now = self.loop.time()
        window = self.upgrades.get(address)
        if window is None or now - window[0] >= self.guard.upgrade_period:
            if len(self.upgrades) >= MAX_TRACKED_ADDRESSES:
                self.upgrades.clear()  # a flood from very many addresses: start afresh
            self.upgrades[address] = [now, 1]
            return True
        window[1] += 1
        return window[1] <= self.guard.upgrades_per_period

    def _declared_length(self) -> int | None:
        for name, value in self.headers:
            if name == b"content-length":
                try:
                    return int(value)
                except ValueError:
                    return None
        return None

    def _body_seconds(self) -> float | None:
        """How long the body may take to arrive, or None when there is none."""
        for name, value in self.headers:
            if name == b"content-length":
                try:
                    length = int(value)
                except ValueError:
                    return None  # the parser refuses it on its own
                if length <= 0:
                    return None
                return self.guard.body_timeout + length / self.guard.body_min_rate
            if name == b"transfer-encoding" and b"chunked" in value.lower():
                return self.guard.body_timeout * CHUNKED_BODY_FACTOR
        return None

    def _arm_head_deadline(self) -> None:
        if self.head_deadline is not None:
            self.head_deadline.cancel()
        self.head_deadline = self.loop.call_later(self.guard.header_timeout, self._head_timed_out)

    def _head_timed_out(self) -> None:
        self.head_deadline = None
        if self.head_bytes:
            self._refuse(REQUEST_TIMEOUT)
        elif not self.transport.is_closing():
            self.transport.close()

    def _refuse(self, response: bytes) -> None:
        if self.transport.is_closing():
            return
        # Only answer when no response has started on this connection.
        if self.reading_head or self.cycle is None or not self.cycle.response_started:
            self.transport.write(response)
        self.transport.close()

    def _cancel_deadlines(self) -> None:
        for handle in (self.head_deadline, self.body_deadline):
            if handle is not None:
                handle.cancel()
        self.head_deadline = self.body_deadline = None


def uvicorn_options(settings: Settings) -> dict[str, Any]:
    """Keyword arguments for ``uvicorn.run`` that put the connection layer in place."""
    GuardedHttpToolsProtocol.configure(settings)
    return {
        "http": GuardedHttpToolsProtocol,
        "limit_concurrency": settings.server_max_connections,
        "timeout_keep_alive": max(1, int(settings.server_keep_alive)),
        "h11_max_incomplete_event_size": settings.server_max_header_bytes,
    }
