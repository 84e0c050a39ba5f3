"""The connection layer: deadlines and caps uvicorn does not enforce by itself.

uvicorn waits for a request head for as long as the client keeps trickling bytes, so a
slowloris client (one header byte a second) holds a connection for ever, and a few thousand of
them exhaust the worker. :class:`GuardedHttpToolsProtocol` gives every connection a deadline for
its request head (from the connection's start, or from the end of the previous response), a
deadline for its body (a grace period plus the time the body takes at a minimum rate), a cap on
the size of the head, and a cap on the connections one address holds open at once.

Before any of that, a new connection is judged from its client address alone
(:mod:`townsquare.shield.connections`): over its address's or network's connection rate, or from
an address with no good recent history while the worker's event loop lags, it gets a ready-made
answer and is closed before uvicorn's parser and per-connection state are built for it.

``townsquare serve`` passes :func:`uvicorn_options` to ``uvicorn.run``.
"""

from __future__ import annotations

import asyncio
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from townsquare.config import Settings
from townsquare.shield import connections
from townsquare.shield.accepting import accept_queue
from townsquare.shield.addresses import ForwardedFor, history_key
from townsquare.shield.connections import (
    UNKNOWN,
    ConnectionRate,
    counts,
    known_addresses,
    loop_lag,
    prefix_of,
)
from townsquare.shield.standing import (
    Standing,
    history,
    streaming_secret,
    token_digest,
    tokens,
)
from townsquare.shield.state import rate

# An address (and its network) with a recently valid token, session or pass may open this many
# times the connections of an unknown one: many people behind one address (a campus, a
# carrier's NAT) are still served once they have signed in, while a flood from addresses that
# never authenticated is held to the base rate.
KNOWN_ADDRESS_ALLOWANCE = 10
# Handshakes with a token not validated yet, per network, as a multiple of the per-address rate.
UNSEEN_TOKEN_PREFIX_FACTOR = 4


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
    token_upgrades_per_period: int
    token_upgrade_period: float
    connection_rate: tuple[int, float]
    prefix_connection_rate: tuple[int, float]
    unseen_token_rate: tuple[int, float]
    # WebSocket connections one token may hold open (the app caps an account's at this).
    streams_per_token: int
    lag_threshold: float
    # Connections a worker holds (of uvicorn's cap, beyond which it answers every request
    # 503) before addresses with no good recent history are refused as while it lags.
    crowded_connections: int
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
            token_upgrades_per_period=rate(settings.rate_limit_streaming)[0]
            if settings.rate_limits_enabled
            else 1 << 30,
            token_upgrade_period=rate(settings.rate_limit_streaming)[1],
            connection_rate=rate(settings.server_connection_rate_per_address)
            if settings.rate_limits_enabled
            else (1 << 30, 1.0),
            prefix_connection_rate=rate(settings.server_connection_rate_per_prefix)
            if settings.rate_limits_enabled
            else (1 << 30, 1.0),
            unseen_token_rate=rate(settings.server_unseen_token_rate)
            if settings.rate_limits_enabled
            else (1 << 30, 1.0),
            streams_per_token=settings.streaming_max_connections_per_account,
            lag_threshold=settings.server_lag_threshold if settings.shield_enabled else 0.0,
            crowded_connections=settings.server_max_connections * CROWDED_EIGHTHS // 8
            if settings.shield_enabled
            else 1 << 30,
            proxies=ForwardedFor(settings.shield_trusted_proxies),
        )


# Now that a worker takes every connection waiting (townsquare.shield.accepting), a flood's
# could fill uvicorn's cap on a worker's connections, and uvicorn then answers 503 to every
# request, a signed-in person's on a connection already open too. From seven eighths of the
# cap, addresses with no good recent history are refused as while the loop lags; the last
# eighth stays for the others.
CROWDED_EIGHTHS = 7

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
# Refusals made before a connection has a parser: written as they are, no JSON per refusal.
BUSY = _response(
    b"503 Service Unavailable\r\nretry-after: 2",
    b"The server is too busy right now; try again shortly",
)
# The same refusal with the connection kept open. A client refused with a close reconnects,
# and a flood that does so at once turns every refusal into an accept: its new connections
# fill the kernel's accept queue, where a signed-in person's new connection (a stream being
# opened) waits behind all of them, seconds before the worker even sees it.
BUSY_KEPT_OPEN = BUSY.replace(b"connection: close\r\n", b"")
INVALID_TOKEN = _response(b"401 Unauthorized", b"The access token is invalid")
TOO_MANY_UNSEEN_TOKENS = _response(
    b"429 Too Many Requests\r\nretry-after: 10",
    b"Too many new access tokens from this network; try again later",
)
MAX_TRACKED_ADDRESSES = 100_000
# Seconds a connection refused over a rate (or a handshake with a token found invalid) is held
# before its answer.
REFUSAL_DELAY = 3.0
# Seconds a connection refused (or challenged) without a parse waits for its next such answer,
# its reading paused meanwhile: a flood that asks again at once on its open connections costs
# the worker one answer per connection and delay, not one per request it can send.
REPEAT_DELAY = 1.0
# Most connections one worker holds without a parser; beyond, they are answered at once.
MAX_HELD_CONNECTIONS = 2_048
# A connection held back without a parser is closed rather than answered again once this
# much of its answers waits unread.
PENDING_WRITE_LIMIT = 16 * 1024
# Health probes and administrators on the machine itself are never turned away for lag.
THIS_MACHINE = frozenset({"127.0.0.1", "::1"})


# Handshake rates are counted in windows this many times shorter than their period (with the
# amount scaled down alike, but never below a few), so a token cannot spend a minute's worth
# of openings in its first second.
HANDSHAKE_WINDOW_DIVISOR = 6
HANDSHAKE_MIN_BURST = 10


def smoothed(amount: int, period: float) -> ConnectionRate:
    """A fixed-window rate of ``amount`` per ``period``, counted in shorter windows."""
    burst = max(amount // HANDSHAKE_WINDOW_DIVISOR, min(amount, HANDSHAKE_MIN_BURST))
    if burst >= amount:
        return ConnectionRate(amount, period)
    return ConnectionRate(burst, period * burst / amount)


# Credentials in a request head, found without parsing it (the head's first bytes only).
BEARER = re.compile(rb"\r\nauthorization:[ \t]*bearer[ \t]+([^\s]+)", re.IGNORECASE)
QUERY_TOKEN = re.compile(rb"^[^\r\n]*?[?&]access_token=([^&\s]+)")
SESSION = re.compile(rb"\r\ncookie:[^\r\n]*?\btownsquare_session=([^;\s]+)", re.IGNORECASE)
PASS_HEADER = re.compile(rb"\r\nx-townsquare-pass:[ \t]*([^\s]+)", re.IGNORECASE)
PASS_COOKIE = re.compile(rb"\r\ncookie:[^\r\n]*?\btownsquare_pass=([^;\s]+)", re.IGNORECASE)
CONTENT_LENGTH = re.compile(rb"\r\ncontent-length:[ \t]*([0-9]{1,9})[ \t]*\r\n", re.IGNORECASE)
# Headers after which a connection cannot simply carry on with its next request.
ENDS_CONNECTION = re.compile(
    rb"\r\n(?:connection:[^\r\n]*\b(?:close|upgrade)\b|transfer-encoding:|upgrade:)",
    re.IGNORECASE,
)


def vouched_for(head: bytes, address: str) -> bool:
    """Whether a request head from ``address`` carries a token or session this worker found
    valid, or a valid proof-of-work pass: such a client is served while the loop lags, from
    wherever it comes."""
    for pattern in (BEARER, QUERY_TOKEN, SESSION):
        found = pattern.search(head)
        if found is not None:
            secret = found.group(1).decode("latin-1")
            if tokens.get(token_digest(secret)) >= Standing.GOOD:
                return True
    checker = connections.pass_checker
    if checker is not None:
        for pattern in (PASS_HEADER, PASS_COOKIE):
            found = pattern.search(head)
            if found is not None and checker(found.group(1).decode("latin-1"), address):
                return True
    return False


def whole_request(data: bytes) -> bool:
    """Whether ``data`` is exactly one HTTP/1.1 request, head and declared body, after which
    the connection may carry on: refused without a parse, it can be answered and kept open."""
    end = data.find(b"\r\n\r\n")
    if end == -1:
        return False
    head = data[: end + 2]
    line_end = head.find(b"\r\n")
    if not head[:line_end].endswith(b" HTTP/1.1") or ENDS_CONNECTION.search(head):
        return False
    lengths = CONTENT_LENGTH.findall(head)
    if len(lengths) > 1 or head.lower().count(b"\r\ncontent-length:") != len(lengths):
        return False  # repeated or malformed: left to the parser's refusal and a close
    length = int(lengths[0]) if lengths else 0
    return len(data) - end - 4 == length


def too_many_connections(period: float) -> bytes:
    return _response(
        b"429 Too Many Requests\r\nretry-after: " + str(max(1, round(period))).encode(),
        b"Too many connections opened; try again later",
    )


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    limits: ClassVar[ConnectionLimits | None] = None
    # Open connections per client address, for this worker process.
    open_connections: ClassVar[dict[str, int]] = {}
    # WebSocket handshakes per client address and per token, for this worker process.
    upgrades: ClassVar[ConnectionRate] = ConnectionRate(1 << 30, 1.0)
    token_upgrades: ClassVar[ConnectionRate] = ConnectionRate(1 << 30, 1.0)
    # Handshakes with a token this worker has not validated yet, per address and per network:
    # each costs a database lookup, and a flood of made-up tokens is nothing but those.
    unseen_tokens: ClassVar[ConnectionRate] = ConnectionRate(1 << 30, 1.0)
    unseen_token_prefixes: ClassVar[ConnectionRate] = ConnectionRate(1 << 30, 1.0)
    # Open WebSocket connections per token digest, for this worker process.
    open_streams: ClassVar[dict[str, int]] = {}
    # Connections held without a parser (refused later, or waiting while the loop lags).
    held: ClassVar[int] = 0

    # New connections per client address and per network, for this worker process.
    address_rate: ClassVar[ConnectionRate] = ConnectionRate(1 << 30, 1.0)
    prefix_rate: ClassVar[ConnectionRate] = ConnectionRate(1 << 30, 1.0)
    too_many_connections: ClassVar[bytes] = too_many_connections(1.0)

    @classmethod
    def configure(cls, settings: Settings) -> None:
        limits = cls.limits = ConnectionLimits.from_settings(settings)
        cls.address_rate = ConnectionRate(*limits.connection_rate)
        cls.upgrades = smoothed(limits.upgrades_per_period, limits.upgrade_period)
        cls.token_upgrades = smoothed(limits.token_upgrades_per_period, limits.token_upgrade_period)
        cls.prefix_rate = ConnectionRate(*limits.prefix_connection_rate)
        amount, period = limits.unseen_token_rate
        cls.unseen_tokens = ConnectionRate(amount, period)
        cls.unseen_token_prefixes = ConnectionRate(
            min(1 << 30, amount * UNSEEN_TOKEN_PREFIX_FACTOR), period
        )
        cls.too_many_connections = too_many_connections(limits.connection_rate[1])
        data_dir: Path | None = settings.data_dir
        if data_dir is not None and not data_dir.is_dir():
            data_dir = None
        connections.configure(
            settings.server_known_addresses, settings.server_addresses_per_token, data_dir
        )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        # uvicorn's own state (its parser above all) is only built for a connection that is
        # let in, in connection_made: a refused one costs this object and no more.
        self.arguments = (args, kwargs)
        self.refused = False
        if GuardedHttpToolsProtocol.limits is None:
            # A worker process started by uvicorn's supervisor: settings come from the
            # environment, as they do for the app itself.
            GuardedHttpToolsProtocol.configure(Settings())
        assert GuardedHttpToolsProtocol.limits is not None
        self.guard = GuardedHttpToolsProtocol.limits
        # uvicorn's record of the worker's connections (None where a test builds the protocol).
        self.worker_state: Any = kwargs.get("server_state")
        self.address: str | None = None
        self.stream_token: str | None = None
        self.pending: tuple[asyncio.Transport, str] | None = None
        self.holding = False
        self.pending_deadline: asyncio.TimerHandle | None = None
        # Requests refused or challenged in a row on this connection without a parse.
        self.refusals = 0

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        loop = asyncio.get_running_loop()
        loop_lag.watch(loop)
        self._take_waiting(loop, transport)
        peer = transport.get_extra_info("peername")
        address = str(peer[0]) if isinstance(peer, tuple) and peer else None
        guard = self.guard
        if address is not None and guard.proxies and guard.proxies.trusts(address):
            address = None
        if address is not None:
            refusal = self._turned_away(address)
            if refusal is BUSY and self._hold():
                # Lagging, and the address is not known: it may still bring a token in good
                # standing or a valid pass (someone on a new network). Decided on its first
                # bytes, still before a parser exists.
                self.refused = True
                self.pending = (transport, address)
                # Counted among the address's open connections: it may stay open.
                self.open_connections[address] = self.open_connections.get(address, 0) + 1
                self.address = address
                self.pending_deadline = asyncio.get_running_loop().call_later(
                    min(2.0, guard.header_timeout), transport.abort
                )
                return
            if refusal is not None:
                self.refused = True
                if refusal is not BUSY and refusal and self._hold():
                    self._answer_later(transport, address, refusal)
                elif refusal:
                    transport.write(refusal)
                    transport.close()
                else:
                    transport.abort()
                return
        self._let_in(transport, address)

    def _take_waiting(self, loop: asyncio.AbstractEventLoop, transport: asyncio.Transport) -> None:
        """Take the connections waiting behind this one off the kernel's accept queue (see
        townsquare.shield.accepting): each is judged here in turn, as if the loop had
        accepted it."""
        if self._crowded():
            return  # left to the other workers, or to the loop's own pace
        args, kwargs = self.arguments
        for connection in accept_queue.take(transport.get_extra_info("sockname")):
            accept_queue.adopt(loop, connection, lambda: type(self)(*args, **kwargs))

    def _answer_later(self, transport: asyncio.Transport, address: str, refusal: bytes) -> None:
        """Refuse a connection over its rate after a while, holding it (without a parser, and
        counted among its address's open connections) until then: a flood that reconnects as
        soon as it is refused otherwise makes every refusal a new connection, and the kernel's
        accept queue, first come first served, fills with them ahead of everyone's."""
        self.open_connections[address] = self.open_connections.get(address, 0) + 1
        self.address = address

        def answer() -> None:
            self.pending_deadline = None
            transport.write(refusal)
            transport.close()

        self.pending_deadline = asyncio.get_running_loop().call_later(REFUSAL_DELAY, answer)

    def _hold(self) -> bool:
        """Count this connection among those held without a parser, unless the worker holds
        as many as it may (each holds a file descriptor uvicorn's own cap does not count)."""
        if GuardedHttpToolsProtocol.held >= MAX_HELD_CONNECTIONS:
            return False
        GuardedHttpToolsProtocol.held += 1
        self.holding = True
        return True

    def _unhold(self) -> None:
        if self.holding:
            self.holding = False
            GuardedHttpToolsProtocol.held -= 1

    def _let_in(self, transport: asyncio.Transport, address: str | None) -> None:
        self._unhold()
        guard = self.guard
        args, kwargs = self.arguments
        HttpToolsProtocol.__init__(self, *args, **kwargs)
        self.reading_head = True
        self.head_bytes = 0
        self.body_bytes = 0
        self.max_body = guard.max_body_bytes
        self.head_deadline: asyncio.TimerHandle | None = None
        self.body_deadline: asyncio.TimerHandle | None = None
        super().connection_made(transport)
        if address is not None and self.address is None:
            self.open_connections[address] = self.open_connections.get(address, 0) + 1
            self.address = address
        self._arm_head_deadline()

    def _turned_away(self, address: str) -> bytes | None:
        """The answer for a connection refused from ``address`` (b"" for a bare close), or None
        when it is let in."""
        guard = self.guard
        if self.open_connections.get(address, 0) >= guard.max_per_address:
            # Closed before a byte is read: the excess costs a socket accept and no more.
            return b""
        now = asyncio.get_running_loop().time()
        by_address = self.address_rate.count(address, now) / max(self.address_rate.amount, 0.5)
        by_prefix = self.prefix_rate.count(prefix_of(address), now) / max(
            self.prefix_rate.amount, 0.5
        )
        if max(by_address, by_prefix) > 1 and (
            max(by_address, by_prefix) > KNOWN_ADDRESS_ALLOWANCE
            or known_addresses.standing(address) == UNKNOWN
        ):
            counts.rate_refused += 1
            return self.too_many_connections
        if self._overloaded_for(address):
            return BUSY
        return None

    def _overloaded_for(self, address: str) -> bool:
        """Whether the worker is overloaded (its loop lags, or it holds nearly as many
        connections as uvicorn serves) and ``address`` has no good recent history: no token
        or pass in good standing, nor anonymous requests this worker answered lately at a
        person's pace (a reader must not be turned away for a lag a flood causes)."""
        threshold = self.guard.lag_threshold
        return (
            ((threshold > 0 and loop_lag.lag > threshold) or self._crowded())
            and known_addresses.standing(address) == UNKNOWN
            and address not in THIS_MACHINE
            and not history.known(history_key(address), time.monotonic())
        )

    def _crowded(self) -> bool:
        """Whether the worker holds nearly as many connections (or requests) as uvicorn
        serves before it answers every request 503."""
        state = self.worker_state
        if state is None:
            return False
        limit = self.guard.crowded_connections
        return len(state.connections) >= limit or len(state.tasks) >= limit

    def connection_lost(self, exc: Exception | None) -> None:
        if self.refused:
            if self.pending_deadline is not None:
                self.pending_deadline.cancel()
                self.pending_deadline = None
            self.pending = None
            self._release_address()
            self._unhold()
            return
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
        refusal = self._handshake_refusal()
        if refusal is not None:
            # Refused here, before a WebSocket protocol, a scope or the app exist for it: a
            # handshake flood costs a parsed request head each.
            counts.handshakes_refused += 1
            self._cancel_deadlines()
            # Answered after a while, for the same reason as a connection over its rate.
            self.transport.pause_reading()
            self.head_deadline = self.loop.call_later(REFUSAL_DELAY, self._refuse, refusal)
            return
        # The WebSocket protocol takes the transport over; its own limits apply from here.
        self._cancel_deadlines()
        self._release_address()
        super().handle_websocket_upgrade()
        if self.stream_token is not None:
            self._count_stream(self.stream_token, self.transport.get_protocol())

    def _count_stream(self, digest: str, protocol: asyncio.BaseProtocol) -> None:
        """Count ``protocol`` among the token's open WebSocket connections until it ends."""
        open_streams = self.open_streams
        open_streams[digest] = open_streams.get(digest, 0) + 1
        lost = protocol.connection_lost

        def connection_lost(exc: Exception | None) -> None:
            remaining = open_streams.get(digest, 1) - 1
            if remaining > 0:
                open_streams[digest] = remaining
            else:
                open_streams.pop(digest, None)
            lost(exc)

        protocol.connection_lost = connection_lost  # type: ignore[method-assign]

    def data_received(self, data: bytes) -> None:
        if self.refused:
            if self.pending is not None:
                self._decide_pending(data)
            return
        if (
            self.reading_head
            and not self.head_bytes
            and self.address is not None
            and (self.cycle is None or self.cycle.response_complete)
        ):
            # A new request on an open connection: perhaps refused or challenged before the
            # parser reads it.
            if self._overloaded_for(self.address) and not vouched_for(data, self.address):
                counts.lag_refused_requests += 1
                if self.flow.write_paused or not whole_request(data):
                    self._refuse(BUSY)
                    return
                self._answer_kept_open(BUSY_KEPT_OPEN)
                return
            if self._answered_at_door(data, self.address):
                return
            self.refusals = 0
        if self.reading_head:
            if self.head_bytes + len(data) > self.guard.max_header_bytes and not self._head_fits(
                data
            ):
                self._refuse(HEAD_TOO_LARGE)
                return
            self.head_bytes += len(data)
        super().data_received(data)

    def _answered_at_door(self, data: bytes, address: str) -> bool:
        """Whether ``data``, one whole request head, got its answer without a parse (a
        challenge while under attack: see townsquare.shield.door)."""
        door = connections.door
        if (
            door is None
            or self.flow.write_paused
            or data.find(b"\r\n\r\n") != len(data) - 4
            or (answer := door(data, address)) is None
        ):
            return False
        response, closing = answer
        counts.door_challenged += 1
        if closing:
            self.transport.write(response)
            self.transport.close()
            return True
        self._answer_kept_open(response)
        return True

    def _answer_kept_open(self, response: bytes) -> None:
        """Write ``response`` to a request refused or challenged without a parse, keeping the
        connection; if its previous request was answered so too, only after
        ``REPEAT_DELAY``, reading nothing meanwhile (someone refused for lag waits for
        ``Retry-After`` anyway, someone challenged comes back with a pass)."""
        self.refusals += 1
        if self.refusals == 1:
            self._answered_kept_open(response)
            return
        self._cancel_deadlines()
        self.transport.pause_reading()
        self.head_deadline = self.loop.call_later(REPEAT_DELAY, self._answered_kept_open, response)

    def _answered_kept_open(self, response: bytes) -> None:
        self.head_deadline = None
        if self.transport.is_closing():
            return
        self.transport.write(response)
        self.transport.resume_reading()
        # As after any answer, the next request has its head deadline (which also closes the
        # connection if it stays idle).
        self._unset_keepalive_if_required()
        self._arm_head_deadline()

    def _decide_pending(self, data: bytes) -> None:
        """A request on a connection held back while the loop lagged: let the connection in
        if the lag is over or the request carries a token in good standing or a valid pass,
        else refuse the request as busy (keeping the connection, still without a parser,
        when the request is whole)."""
        assert self.pending is not None
        transport, address = self.pending
        if self.pending_deadline is not None:
            self.pending_deadline.cancel()
            self.pending_deadline = None
        if self._overloaded_for(address) and not vouched_for(data, address):
            counts.lag_refused_connections += 1
            if whole_request(data) and transport.get_write_buffer_size() < PENDING_WRITE_LIMIT:
                self.refusals += 1
                if self.refusals == 1:
                    self._refused_pending(transport)
                else:
                    # Asking again at once: answered later, as on an open connection.
                    transport.pause_reading()
                    self.pending_deadline = asyncio.get_running_loop().call_later(
                        REPEAT_DELAY, self._refused_pending, transport
                    )
                return
            self.pending = None
            transport.write(BUSY)
            transport.close()
            return
        self.pending = None
        self.refused = False
        self._let_in(transport, address)
        self.data_received(data)

    def _refused_pending(self, transport: asyncio.Transport) -> None:
        if transport.is_closing():
            return
        transport.write(BUSY_KEPT_OPEN)
        transport.resume_reading()
        # Held until its next request, as long as any connection waits for one.
        self.pending_deadline = asyncio.get_running_loop().call_later(
            self.guard.header_timeout, transport.abort
        )

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

    def _handshake_refusal(self) -> bytes | None:
        """The ready-made answer refusing this WebSocket handshake, or None to go on.

        Counted per address and per token in this worker's fixed windows (the app counts them
        again, more finely, for those let through); a token already found invalid is refused
        without another database lookup."""
        now = self.loop.time()
        if self.address is not None and not self.upgrades.allows(self.address, now):
            return TOO_MANY_HANDSHAKES
        secret = streaming_secret(
            {
                "type": "websocket",
                "headers": self.headers,
                "query_string": self.url.partition(b"?")[2],
            }
        )
        if secret is None:
            return None
        digest = token_digest(secret)
        standing = tokens.get(digest)
        if standing == Standing.INVALID:
            return INVALID_TOKEN
        # Made-up tokens cost a database lookup each before they are known to be invalid:
        # only so many unseen ones per address and network. Tokens this worker validated are
        # never counted here.
        if (
            standing == Standing.UNKNOWN
            and self.address is not None
            and not self._unseen_token_allowed(self.address, now)
        ):
            counts.unseen_tokens_refused += 1
            return TOO_MANY_UNSEEN_TOKENS
        if self.open_streams.get(digest, 0) >= self.guard.streams_per_token:
            # The app would refuse it too (the per-account cap), after a lookup.
            return TOO_MANY_HANDSHAKES
        if not self.token_upgrades.allows(digest, now):
            return TOO_MANY_HANDSHAKES
        self.stream_token = digest
        return None

    def _unseen_token_allowed(self, address: str, now: float) -> bool:
        by_address = self.unseen_tokens.count(address, now) / max(self.unseen_tokens.amount, 0.5)
        prefixes = self.unseen_token_prefixes
        by_prefix = prefixes.count(prefix_of(address), now) / max(prefixes.amount, 0.5)
        worst = max(by_address, by_prefix)
        if worst <= 1:
            return True
        # An address with a good recent history (people behind one NAT) gets more room.
        return worst <= KNOWN_ADDRESS_ALLOWANCE and (
            known_addresses.standing(address) != UNKNOWN or address in THIS_MACHINE
        )

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
