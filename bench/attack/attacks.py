"""The attack scenarios, each run in its own processes so the legitimate clients keep a loop.

Rate floods send requests open-loop at a target rate from thousands of loopback source
addresses and ignore every ``Retry-After``; connection floods hold thousands of connections
(slowloris, slow POST, streaming handshakes). Each process reports what it sent and what it got.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from bench.attack.wire import Answer, Connection, attacker_address, request_bytes
from townsquare.shield.passes import solve

FLOOD_CONNECTIONS = 600  # per process
TIMEOUT = 5.0


@dataclass
class AttackSpec:
    scenario: str  # anon-flood, stuffing, search, pow, slowloris, slow-post, streaming
    run: int  # which block of source addresses
    offset: int  # first address index of this process
    host: str
    port: int
    duration: float
    rate: float = 0.0  # requests per second, for rate floods
    connections: int = 0  # held connections, for connection floods
    client_id: str = ""
    client_secret: str = ""
    usernames: list[str] = field(default_factory=list)
    words: list[str] = field(default_factory=list)
    tokens: list[str] = field(default_factory=list)  # the attacker's own accounts
    niceness: int = 0  # the attack process's scheduling priority (see bench/attack/__main__.py)


@dataclass
class AttackResult:
    scenario: str
    sent: int = 0
    served: int = 0  # 2xx (101 for WebSockets): attack requests that got what they asked
    statuses: Counter[int] = field(default_factory=Counter)
    errors: int = 0
    seconds: float = 0.0
    held_peak: int = 0  # connection floods: most connections open at once
    cut_off: int = 0  # connection floods: connections the server closed

    def merge(self, other: AttackResult) -> None:
        self.sent += other.sent
        self.served += other.served
        self.statuses.update(other.statuses)
        self.errors += other.errors
        self.seconds = max(self.seconds, other.seconds)
        self.held_peak += other.held_peak
        self.cut_off += other.cut_off


def _random_id() -> str:
    return str(random.randrange(10**17, 10**18))


def _requester(spec: AttackSpec) -> Callable[[int], bytes]:
    if spec.scenario == "anon-flood":
        # Cache-busting reads of the public timeline: each one a real database query.
        return lambda _i: request_bytes(
            "GET",
            f"/api/v1/timelines/public?local=true&max_id={_random_id()}",
            {"Accept": "application/json"},
        )
    if spec.scenario == "stuffing":

        def stuffing(_i: int) -> bytes:
            body = (
                f"grant_type=password&client_id={spec.client_id}"
                f"&client_secret={spec.client_secret}"
                f"&username={random.choice(spec.usernames)}&password=guess{random.random():.8f}"
            ).encode()
            return request_bytes(
                "POST",
                "/oauth/token",
                {"Content-Type": "application/x-www-form-urlencoded"},
                body,
            )

        return stuffing
    if spec.scenario == "search":

        def search(i: int) -> bytes:
            words = " ".join(random.choices(spec.words, k=2))
            headers = {"Accept": "application/json"}
            if spec.tokens and i % 5 == 0:
                headers["Authorization"] = f"Bearer {spec.tokens[i % len(spec.tokens)]}"
            return request_bytes("GET", f"/api/v2/search?q={words.replace(' ', '+')}", headers)

        return search
    raise ValueError(spec.scenario)


def _count(result: AttackResult, answer: Answer | None) -> None:
    result.sent += 1
    if answer is None:
        result.errors += 1
        return
    result.statuses[answer.status] += 1
    if 200 <= answer.status < 300:
        result.served += 1


async def _paced(
    spec: AttackSpec,
    result: AttackResult,
    connections: int,
    send_one: Callable[[int, Connection], Any],
) -> None:
    """``connections`` coroutines, each on its own source address, at ``spec.rate`` in total."""
    started = time.monotonic()
    end = started + spec.duration
    interval = connections / spec.rate

    async def worker(i: int) -> None:
        connection = Connection(spec.host, spec.port, attacker_address(spec.run, spec.offset + i))
        due = started + random.random() * interval
        while True:
            now = time.monotonic()
            if now >= end:
                break
            if due > now:
                await asyncio.sleep(due - now)
            due += interval
            if time.monotonic() - due > interval:
                due = time.monotonic()  # fell behind: an open-loop flood does not catch up
            await send_one(i, connection)
        connection.close()

    await asyncio.gather(*(worker(i) for i in range(connections)))
    result.seconds = time.monotonic() - started


async def rate_flood(spec: AttackSpec) -> AttackResult:
    result = AttackResult(spec.scenario)
    make = _requester(spec)

    async def send_one(i: int, connection: Connection) -> None:
        try:
            async with asyncio.timeout(TIMEOUT):
                answer: Answer | None = await connection.send(make(i))
        except (TimeoutError, ConnectionError, OSError):
            connection.close()
            answer = None
        _count(result, answer)

    await _paced(spec, result, min(FLOOD_CONNECTIONS, max(1, int(spec.rate))), send_one)
    return result


async def pow_flood(spec: AttackSpec) -> AttackResult:
    """An attacker that solves every challenge natively, then floods with the pass it earned."""
    result = AttackResult(spec.scenario)
    passes: dict[int, str] = {}
    solving = 0.0
    end = time.monotonic() + spec.duration

    async def send_one(i: int, connection: Connection) -> None:
        nonlocal solving
        path = f"/api/v1/timelines/public?local=true&max_id={_random_id()}"
        headers = {"Accept": "application/json"}
        if i in passes:
            headers["X-Townsquare-Pass"] = passes[i]
        try:
            async with asyncio.timeout(TIMEOUT):
                got = await connection.send(request_bytes("GET", path, headers))
                answer: Answer | None = got
                if got.status == 429 and b"challenge" in got.body and time.monotonic() < end:
                    challenge = orjson.loads(got.body)["challenge"]
                    began = time.monotonic()
                    nonce = solve(challenge["challenge"], int(challenge["difficulty"]))
                    solving += time.monotonic() - began
                    body = orjson.dumps({"challenge": challenge["challenge"], "nonce": nonce})
                    earned = await connection.send(
                        request_bytes(
                            "POST",
                            "/api/v1/shield/pass",
                            {"Content-Type": "application/json"},
                            body,
                        )
                    )
                    if earned.status == 200:
                        passes[i] = orjson.loads(earned.body)["pass"]
        except (TimeoutError, ConnectionError, OSError):
            connection.close()
            answer = None
        _count(result, answer)

    # Fewer sources: each one solves puzzles for its own network.
    await _paced(spec, result, min(200, max(1, int(spec.rate))), send_one)
    return result


async def connection_flood(spec: AttackSpec) -> AttackResult:
    """Hold ``spec.connections`` connections open, reopening each one the server closes."""
    result = AttackResult(spec.scenario)
    started = time.monotonic()
    end = started + spec.duration
    held = 0

    def head(i: int) -> bytes:
        if spec.scenario == "slowloris":
            return b"GET /api/v1/timelines/public HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        if spec.scenario == "slow-post":
            return (
                b"POST /api/v1/statuses HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                b"Content-Type: application/x-www-form-urlencoded\r\n"
                b"Content-Length: 100000\r\n\r\n"
            )
        # A streaming connection flood: WebSocket handshakes, some with the attacker's own
        # (valid) tokens, the rest with made-up ones.
        token = spec.tokens[i % len(spec.tokens)] if spec.tokens and i % 2 else f"forged{i}"
        return request_bytes(
            "GET",
            f"/api/v1/streaming?stream=public&access_token={token}",
            {
                "Upgrade": "websocket",
                "Connection": "Upgrade",
                "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
                "Sec-WebSocket-Version": "13",
            },
        )

    async def drip(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        """One byte every two seconds; True if the connection lasted to the end."""
        while time.monotonic() < end:
            try:
                async with asyncio.timeout(2.0):
                    data = await reader.read(65536)
            except TimeoutError:
                writer.write(b"a" if spec.scenario == "slow-post" else b"X")
                continue
            if data.startswith(b"HTTP/"):
                status = int(data[9:12])
                result.statuses[status] += 1
                if 200 <= status < 300:
                    result.served += 1
            return False
        return True

    async def hold(i: int) -> None:
        nonlocal held
        # 25 connections per address: under the per-address cap, as a careful attacker would.
        source = attacker_address(spec.run, spec.offset + i // 25)
        await asyncio.sleep(random.random() * 2.0)
        while time.monotonic() < end:
            writer: asyncio.StreamWriter | None = None
            counted = False
            try:
                async with asyncio.timeout(TIMEOUT):
                    reader, writer = await asyncio.open_connection(
                        spec.host, spec.port, local_addr=(source, 0)
                    )
                held += 1
                counted = True
                result.held_peak = max(result.held_peak, held)
                writer.write(head(i))
                result.sent += 1
                if spec.scenario == "streaming":
                    async with asyncio.timeout(TIMEOUT):
                        answer = await reader.readuntil(b"\r\n\r\n")
                    status = int(answer[9:12])
                    result.statuses[status] += 1
                    if status == 101:
                        result.served += 1
                        # Hold the stream until the server drops it or the run ends.
                        with contextlib.suppress(TimeoutError):
                            async with asyncio.timeout(max(0.1, end - time.monotonic())):
                                await reader.read(1)
                    else:
                        result.cut_off += 1
                        await asyncio.sleep(1.0)
                elif not await drip(reader, writer):
                    result.cut_off += 1
            except (
                ConnectionError,
                OSError,
                TimeoutError,
                asyncio.IncompleteReadError,
                ValueError,
            ):
                result.cut_off += 1
                await asyncio.sleep(0.5)
            finally:
                if counted:
                    held -= 1
                if writer is not None:
                    writer.transport.abort()

    await asyncio.gather(*(hold(i) for i in range(spec.connections)))
    result.seconds = time.monotonic() - started
    return result


def run_attack(spec: AttackSpec, results: Any) -> None:
    """Process entry point: run one attack and put its :class:`AttackResult` on ``results``."""
    # Below the legitimate clients' priority, and by default below the server's (see
    # ATTACKERS_NICENESS in bench/attack/__main__.py).
    os.setpriority(os.PRIO_PROCESS, 0, spec.niceness)
    if spec.niceness > 0:
        # Where the kernel groups processes by session for scheduling (autogroup), niceness
        # only orders the processes of one session: this one gets a session of its own,
        # niced as a whole.
        os.setsid()
        with contextlib.suppress(OSError):
            Path("/proc/self/autogroup").write_text(str(spec.niceness))
    try:
        import uvloop

        uvloop.install()
    except ImportError:  # pragma: no cover
        pass
    if spec.scenario in ("slowloris", "slow-post", "streaming"):
        runner = connection_flood
    elif spec.scenario == "pow":
        runner = pow_flood
    else:
        runner = rate_flood
    results.put(asyncio.run(runner(spec)))
