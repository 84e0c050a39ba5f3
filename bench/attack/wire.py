"""A small HTTP/1.1 client on raw asyncio streams: cheap enough to flood from Python.

Every connection can be bound to its own loopback source address (127.x.y.z), so one machine
looks like thousands of clients. Only 127.0.0.0/8 is ever used, as a guard checks.
"""

from __future__ import annotations

import asyncio
import ipaddress
from dataclasses import dataclass

LOOPBACK = ipaddress.ip_network("127.0.0.0/8")


def check_loopback(*addresses: str) -> None:
    for address in addresses:
        if ipaddress.ip_address(address) not in LOOPBACK:
            raise ValueError(f"{address} is outside 127.0.0.0/8")


def attacker_address(run: int, index: int) -> str:
    """Source address ``index`` of attack run ``run``: its own /24 for the first 2,048 of them,
    and a block of second octets (127.128-255) no other run uses, so limits left over from one
    run never help the next."""
    second = 128 + (8 * run + index % 8) % 128
    third = (index // 8) % 256
    fourth = 1 + (index // 2048) % 250
    return f"127.{second}.{third}.{fourth}"


def request_bytes(
    method: str,
    path: str,
    headers: dict[str, str] | None = None,
    body: bytes = b"",
    *,
    host: str = "127.0.0.1",
) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}"]
    for name, value in (headers or {}).items():
        lines.append(f"{name}: {value}")
    if body or method in ("POST", "PUT", "PATCH"):
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


@dataclass
class Answer:
    status: int
    headers: dict[bytes, bytes]
    body: bytes


class Connection:
    """One keep-alive connection; reopened by :meth:`send` when the server closed it."""

    def __init__(self, host: str, port: int, source: str | None = None) -> None:
        if source is not None:
            check_loopback(source)
        check_loopback(host)
        self.host, self.port, self.source = host, port, source
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def open(self) -> None:
        local = (self.source, 0) if self.source else None
        self.reader, self.writer = await asyncio.open_connection(
            self.host, self.port, local_addr=local, limit=1 << 20
        )

    def close(self) -> None:
        if self.writer is not None:
            self.writer.transport.abort()
        self.reader = self.writer = None

    async def send(self, raw: bytes) -> Answer:
        for attempt in (1, 2):
            if self.writer is None:
                await self.open()
            assert self.reader is not None and self.writer is not None
            try:
                self.writer.write(raw)
                return await self._read()
            except (ConnectionError, asyncio.IncompleteReadError) as error:
                self.close()
                if attempt == 2:
                    raise ConnectionError(str(error)) from error
        raise AssertionError("unreachable")

    async def _read(self) -> Answer:
        assert self.reader is not None
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        headers: dict[bytes, bytes] = {}
        for line in head.split(b"\r\n")[1:]:
            name, sep, value = line.partition(b":")
            if sep:
                headers[name.strip().lower()] = value.strip()
        if b"content-length" in headers:
            body = await self.reader.readexactly(int(headers[b"content-length"]))
        elif headers.get(b"transfer-encoding", b"").lower() == b"chunked":
            body = await self._read_chunked()
        else:
            body = b""
        if headers.get(b"connection", b"").lower() == b"close":
            self.close()
        return Answer(status, headers, body)

    async def _read_chunked(self) -> bytes:
        assert self.reader is not None
        chunks: list[bytes] = []
        while True:
            size = int((await self.reader.readuntil(b"\r\n")).split(b";")[0], 16)
            if size == 0:
                await self.reader.readuntil(b"\r\n")
                return b"".join(chunks)
            chunks.append(await self.reader.readexactly(size))
            await self.reader.readexactly(2)
