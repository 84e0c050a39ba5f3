"""Listeners and a speaker as light as they can be, so that thousands fit beside the server.

A listener is a bare asyncio protocol: it sends the WebSocket handshake, then reads frames and
counts Clusters (answering pings); a probe also notes when each Cluster arrived. A frozen
listener stops reading after the handshake, with a small receive buffer.
"""

from __future__ import annotations

import asyncio
import base64
import os
import random
import socket
import struct
import time
from dataclasses import dataclass, field
from typing import Any, cast

CLUSTER = 2
INIT = 1
IP_BIND_ADDRESS_NO_PORT = getattr(socket, "IP_BIND_ADDRESS_NO_PORT", 24)  # Linux ≥ 4.2


@dataclass
class Tally:
    """What all listeners of a run received."""

    clusters: int = 0
    bytes: int = 0
    refused: int = 0
    closed: int = 0


class Listener(asyncio.Protocol):
    def __init__(
        self,
        host: str,
        path: str,
        tally: Tally,
        *,
        probe: dict[bytes, int] | None = None,
        frozen: bool = False,
    ) -> None:
        self.host = host
        self.path = path
        self.tally = tally
        self.probe = probe  # cluster payload → index, for probes only
        self.arrivals: dict[int, float] = {}
        self.frozen = frozen
        self.upgraded: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self.first_cluster_at: float | None = None
        self.got_init = False
        # Resolved with the moment the first INIT frame (a track's init segment) arrived.
        self.initialised: asyncio.Future[float] = asyncio.get_running_loop().create_future()
        self.transport: asyncio.Transport | None = None  # uvloop's is not a subclass
        self._buffer = bytearray()
        self.clusters = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        key = base64.b64encode(os.urandom(16)).decode()
        self.transport.write(
            (
                f"GET {self.path} HTTP/1.1\r\nHost: {self.host}\r\nUpgrade: websocket\r\n"
                f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                "Sec-WebSocket-Version: 13\r\n\r\n"
            ).encode()
        )

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        if not self.upgraded.done():
            end = self._buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            status = int(self._buffer[9:12])
            del self._buffer[: end + 4]
            self.upgraded.set_result(status)
            if status != 101:
                self.tally.refused += 1
                assert self.transport is not None
                self.transport.close()
                return
            if self.frozen:
                assert self.transport is not None
                self.transport.pause_reading()
                return
        self._frames()

    def _frames(self) -> None:
        buffer = self._buffer
        position = 0
        while len(buffer) - position >= 2:
            opcode = buffer[position] & 0x0F
            length = buffer[position + 1] & 0x7F
            header = 2
            if length == 126:
                if len(buffer) - position < 4:
                    break
                length = struct.unpack_from(">H", buffer, position + 2)[0]
                header = 4
            elif length == 127:
                if len(buffer) - position < 10:
                    break
                length = struct.unpack_from(">Q", buffer, position + 2)[0]
                header = 10
            end = position + header + length
            if end > len(buffer):
                break
            start = position + header
            if opcode == 2:
                kind = buffer[start]
                if kind == CLUSTER:
                    self.clusters += 1
                    self.tally.clusters += 1
                    self.tally.bytes += length
                    now = time.monotonic()
                    if self.first_cluster_at is None:
                        self.first_cluster_at = now
                    if self.probe is not None:
                        index = self.probe.get(bytes(buffer[start + 9 : end]))
                        if index is not None:
                            self.arrivals[index] = now
                elif kind == INIT:
                    self.got_init = True
                    if not self.initialised.done():
                        self.initialised.set_result(time.monotonic())
            elif opcode == 9 and self.transport is not None:
                # A pong, masked with a zero key (so the payload goes as is).
                payload = bytes(buffer[start:end])
                self.transport.write(bytes([0x8A, 0x80 | len(payload)]) + b"\0\0\0\0" + payload)
            elif opcode == 8 and self.transport is not None:
                self.transport.close()
            position = end
        del buffer[:position]

    def connection_lost(self, exc: Exception | None) -> None:
        self.tally.closed += 1
        if not self.upgraded.done():
            self.upgraded.set_result(0)
        if not self.initialised.done():
            self.initialised.set_result(0.0)


async def open_listener(
    host: str,
    port: int,
    path: str,
    tally: Tally,
    *,
    probe: dict[bytes, int] | None = None,
    frozen: bool = False,
    source: str | None = None,
) -> Listener:
    """``source``: a loopback address to connect from (its ephemeral ports are its own)."""
    loop = asyncio.get_running_loop()
    sock = socket.socket()
    sock.setblocking(False)
    if source is not None:
        # The port is chosen at connect, per destination, rather than at bind.
        sock.setsockopt(socket.IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, 1)
        sock.bind((source, 0))
    if frozen:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    await loop.sock_connect(sock, (host, port))
    _transport, listener = await loop.create_connection(
        lambda: Listener(f"{host}:{port}", path, tally, probe=probe, frozen=frozen), sock=sock
    )
    return listener


@dataclass
class JoinResult:
    """One client process's share of a join storm. A join is done when the listener has the
    live track's init segment (its INIT frame), not merely the 101 of its handshake."""

    admitted: int = 0
    joined: int = 0
    refused: int = 0
    failed: int = 0
    no_init: int = 0
    admitted_at: list[float] = field(default_factory=list)
    joined_at: list[float] = field(default_factory=list)
    listeners: list[Listener] = field(default_factory=list)


async def join_with_retries(
    host: str, port: int, path: str, tally: Tally, result: JoinResult, deadline: float
) -> None:
    """Join like the web player: on 503, wait Retry-After-ish with jitter and try again."""
    attempt = 0
    while time.monotonic() < deadline:
        try:
            listener = await open_listener(host, port, path, tally)
            status = await asyncio.wait_for(listener.upgraded, 10)
        except (OSError, TimeoutError):
            status = 0
        if status == 101:
            result.admitted += 1
            result.admitted_at.append(time.monotonic())
            result.listeners.append(listener)
            try:
                initialised = await asyncio.wait_for(asyncio.shield(listener.initialised), 10)
            except TimeoutError:
                initialised = 0.0
            if initialised:
                result.joined += 1
                result.joined_at.append(initialised)
            else:
                result.no_init += 1
            return
        if status == 503:
            result.refused += 1
        else:
            result.failed += 1
        delay = min(8.0, 0.5 * 2**attempt) * (0.5 + random.random())
        attempt += 1
        await asyncio.sleep(delay)


def storm_part(
    host: str, port: int, path: str, count: int, start_at: float, deadline: float
) -> dict[str, Any]:
    """One client process's share of a join storm, started at ``start_at`` (time.monotonic(),
    one clock for every process of the machine) so that the shares arrive together."""
    try:
        import uvloop

        return uvloop.run(_storm_part(host, port, path, count, start_at, deadline))
    except ImportError:
        return asyncio.run(_storm_part(host, port, path, count, start_at, deadline))


async def _storm_part(
    host: str, port: int, path: str, count: int, start_at: float, deadline: float
) -> dict[str, Any]:
    result = JoinResult()
    tally = Tally()
    await asyncio.sleep(max(0.0, start_at - time.monotonic()))
    cpu_before = time.process_time()
    await asyncio.gather(
        *(join_with_retries(host, port, path, tally, result, deadline) for _ in range(count))
    )
    cpu = time.process_time() - cpu_before
    for listener in result.listeners:
        if listener.transport is not None:
            listener.transport.close()
    return {
        "cpu_s": cpu,
        "admitted": result.admitted,
        "joined": result.joined,
        "refused": result.refused,
        "failed": result.failed,
        "no_init": result.no_init,
        "admitted_at": result.admitted_at,
        "joined_at": result.joined_at,
    }
