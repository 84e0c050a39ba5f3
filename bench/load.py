"""Load generation.

Closed loop (:func:`run_load`): ``connections`` clients, each sending its next request as soon
as the last one is answered (wrk with a Lua script when installed, else an asyncio httpx
generator). It finds the most the server can serve; its latencies are those of a saturated
server, mostly time spent queueing behind the other connections' requests.

Open loop (:func:`run_open_load`): requests sent on a fixed schedule, ``rate`` per second,
whether or not earlier ones have been answered, each timed from the moment it was due to be
sent (as wrk2 does), so a server that falls behind shows it in the latencies instead of
slowing the client down. These are the latencies users get when that many requests arrive.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import shutil
import statistics
import subprocess
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import cast

import httpx
import uvloop

WRK_SCRIPT = r"""
local tokens = {}
for line in io.lines(os.getenv("BENCH_TOKENS")) do
  local token = line:match("%S+%s+(%S+)")
  if token then table.insert(tokens, token) end
end
local method = os.getenv("BENCH_METHOD")
local path = os.getenv("BENCH_PATH")
local counter = 0
function setup(thread) thread:set("id", math.random(1, 1000000)) end
function request()
  counter = counter + 1
  local token = tokens[((counter + (id or 0)) % #tokens) + 1]
  local headers = {["Authorization"] = "Bearer " .. token}
  if method == "POST" then
    headers["Content-Type"] = "application/x-www-form-urlencoded"
    return wrk.format("POST", path, headers, "status=Benchmark+post+number+" .. counter)
  end
  return wrk.format("GET", path, headers)
end
function done(summary, latency, requests)
  local errors = summary.errors
  io.write(string.format(
    'RESULT {"requests": %d, "seconds": %f, "p50_ms": %f, "p99_ms": %f, "failed": %d}\n',
    summary.requests, summary.duration / 1e6, latency:percentile(50) / 1000,
    latency:percentile(99) / 1000,
    errors.connect + errors.read + errors.write + errors.timeout + errors.status))
end
"""


@dataclass
class LoadResult:
    requests: int
    seconds: float
    p50_ms: float
    p99_ms: float
    failed: int
    tool: str

    @property
    def per_second(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0


def run_load(
    url: str,
    path: str,
    tokens_file: Path,
    *,
    method: str = "GET",
    seconds: float,
    connections: int,
    work_dir: Path,
) -> LoadResult:
    if shutil.which("wrk"):
        return _wrk(url, path, tokens_file, method, seconds, connections, work_dir)
    tokens = [line.split()[1] for line in tokens_file.read_text().splitlines() if line.strip()]
    return asyncio.run(_httpx_load(url, path, tokens, method, seconds, connections))


def _wrk(
    url: str,
    path: str,
    tokens_file: Path,
    method: str,
    seconds: float,
    connections: int,
    work_dir: Path,
) -> LoadResult:
    script = work_dir / "bench.lua"
    script.write_text(WRK_SCRIPT)
    command = ["wrk", "-t", "2", "-c", str(connections), "-d", f"{int(seconds)}s"]
    command += ["--latency", "-s", str(script), url]
    env = {"BENCH_TOKENS": str(tokens_file), "BENCH_METHOD": method, "BENCH_PATH": path}
    output = subprocess.run(
        command,
        env={**env, "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=seconds + 60,
        check=True,
    ).stdout
    line = next(line for line in output.splitlines() if line.startswith("RESULT "))
    data = json.loads(line.removeprefix("RESULT "))
    return LoadResult(tool="wrk", **data)


async def _httpx_load(
    url: str, path: str, tokens: list[str], method: str, seconds: float, connections: int
) -> LoadResult:
    latencies: list[float] = []
    failed = 0
    deadline = time.monotonic() + seconds
    limits = httpx.Limits(max_connections=connections)

    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=30) as client:

        async def worker(offset: int) -> None:
            nonlocal failed
            counter = offset
            while time.monotonic() < deadline:
                counter += 1
                headers = {"Authorization": f"Bearer {tokens[counter % len(tokens)]}"}
                started = time.perf_counter()
                try:
                    if method == "POST":
                        data = {"status": f"Benchmark post number {counter}"}
                        response = await client.post(path, headers=headers, data=data)
                    else:
                        response = await client.get(path, headers=headers)
                    ok = response.status_code < 400
                except httpx.HTTPError:
                    ok = False
                latencies.append(time.perf_counter() - started)
                failed += not ok

        started = time.monotonic()
        await asyncio.gather(*(worker(i * 7919) for i in range(connections)))
        elapsed = time.monotonic() - started
    cuts = statistics.quantiles(latencies, n=100) if len(latencies) > 1 else [0.0] * 99
    return LoadResult(len(latencies), elapsed, cuts[49] * 1000, cuts[98] * 1000, failed, "httpx")


# Connections an open-loop run opens at its start and keeps (as wrk2's ``-c``); a request due
# while all are busy waits for one, and its wait counts in its latency. Within the shield's
# limits on one client address (64 open connections and 60 new ones per 10 s, per worker).
OPEN_LOOP_CONNECTIONS = 48
# The shortest sleep between sends: uvloop's timers count whole milliseconds, and a shorter
# one comes back at once, which spun the loop between requests due less than 1 ms apart.
OPEN_LOOP_TICK_SECONDS = 0.001
# How long an open-loop run waits, after its last request was due, for the answers.
OPEN_LOOP_DRAIN_SECONDS = 10.0


def run_open_load(
    url: str,
    path: str,
    tokens_file: Path,
    *,
    seconds: float,
    rate: float,
    connections: int = OPEN_LOOP_CONNECTIONS,
) -> LoadResult:
    """``rate`` GET requests per second for ``seconds``, on a schedule (see the docstring)."""
    tokens = [line.split()[1] for line in tokens_file.read_text().splitlines() if line.strip()]
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(_open_load(url, path, tokens, seconds, rate, connections))


class _Schedule:
    """An open-loop run's state, shared by its connections: the requests due but not sent yet
    (waiting for a free connection, oldest first), the free connections (the longest free
    first, so none idles into the server's keep-alive timeout), and the latencies so far."""

    def __init__(self, requests: list[bytes], expected: int) -> None:
        self.requests = requests
        self.expected = expected
        self.waiting: deque[tuple[int, float]] = deque()
        self.free: deque[_Connection] = deque()
        self.latencies: list[float] = []
        self.failed = 0
        self.all_answered = asyncio.Event()
        self.reopening: set[asyncio.Task[None]] = set()

    def due(self, number: int, due: float) -> None:
        if self.free:
            self.free.popleft().send(number, due)
        else:
            self.waiting.append((number, due))

    def answered(self, due: float, ok: bool) -> None:
        self.latencies.append(time.perf_counter() - due)
        self.failed += not ok
        if len(self.latencies) >= self.expected:
            self.all_answered.set()

    def ready(self, connection: _Connection) -> None:
        """The connection may send again: the request waiting longest, else it waits."""
        if self.waiting:
            connection.send(*self.waiting.popleft())
        else:
            self.free.append(connection)


class _Connection(asyncio.Protocol):
    """One keep-alive HTTP/1.1 connection of an open-loop run, one GET at a time, each answer
    read by its Content-Length. No task or future per request: the answer's last bytes end
    it and send the next. A connection lost (or an answer without a Content-Length) fails
    the request in flight, and the connection is opened again."""

    def __init__(self, schedule: _Schedule, host: str, port: int) -> None:
        self.schedule = schedule
        self.host = host
        self.port = port
        self.transport: asyncio.Transport | None = None
        self.head = bytearray()
        self.due: float | None = None
        self.ok = False
        self.remaining = -1  # bytes of the body still to come; -1 while reading the head

    async def open(self) -> None:
        loop = asyncio.get_running_loop()
        await loop.create_connection(lambda: self, self.host, self.port)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are no subclasses of asyncio's, though they do all it does.
        self.transport = cast(asyncio.Transport, transport)

    def send(self, number: int, due: float) -> None:
        if self.transport is None:  # closed by the server while free: sent once reopened
            self.schedule.waiting.appendleft((number, due))
            self._reopen()
            return
        self.due = due
        self.remaining = -1
        self.transport.write(self.schedule.requests[number % len(self.schedule.requests)])

    def data_received(self, data: bytes) -> None:
        if self.remaining >= 0:
            self.remaining -= len(data)
        else:
            self.head += data
            end = self.head.find(b"\r\n\r\n")
            if end < 0:
                return
            head = bytes(self.head[:end]).lower()
            at = head.find(b"\r\ncontent-length:")
            if at < 0:
                self._fail()
                return
            line_end = head.find(b"\r\n", at + 2)
            self.ok = int(head[9:12]) < 400
            length = int(head[at + 17 : line_end if line_end > 0 else None])
            self.remaining = length - (len(self.head) - end - 4)
            self.head.clear()
        if self.remaining <= 0 and self.due is not None:
            self.schedule.answered(self.due, self.ok)
            self.due = None
            self.schedule.ready(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        if self.due is not None:
            self._fail()

    def _fail(self) -> None:
        if self.due is not None:
            self.schedule.answered(self.due, False)
            self.due = None
        if self.transport is not None:
            transport, self.transport = self.transport, None
            transport.abort()
        self._reopen()

    def _reopen(self) -> None:
        self.head.clear()
        task = asyncio.get_running_loop().create_task(self._open_again())
        self.schedule.reopening.add(task)
        task.add_done_callback(self.schedule.reopening.discard)

    async def _open_again(self) -> None:
        while True:
            try:
                await self.open()
            except OSError:
                await asyncio.sleep(0.1)
                continue
            self.schedule.ready(self)
            return


async def _open_load(
    url: str, path: str, tokens: list[str], seconds: float, rate: float, connections: int
) -> LoadResult:
    address = httpx.URL(url)
    host, port = address.host, address.port or 80
    requests = [
        (
            f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nAuthorization: Bearer {token}\r\n\r\n"
        ).encode()
        for token in tokens
    ]
    total = math.floor(seconds * rate)
    schedule = _Schedule(requests, total)
    pool = [_Connection(schedule, host, port) for _ in range(connections)]
    await asyncio.gather(*(connection.open() for connection in pool))
    schedule.free.extend(pool)
    started = time.perf_counter()
    number = 0
    # Every request due by now is sent (or queued for a connection) before sleeping again, so
    # a late wake-up sends a burst rather than shifting the schedule.
    while number < total:
        now = time.perf_counter()
        while number < total and started + number / rate <= now:
            schedule.due(number, started + number / rate)
            number += 1
        if number < total:
            wait = started + number / rate - time.perf_counter()
            await asyncio.sleep(max(wait, OPEN_LOOP_TICK_SECONDS))
    sent = time.perf_counter() - started
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(schedule.all_answered.wait(), OPEN_LOOP_DRAIN_SECONDS)
    answered = len(schedule.latencies)
    unanswered = total - answered
    latencies = schedule.latencies + [OPEN_LOOP_DRAIN_SECONDS] * unanswered
    for task in list(schedule.reopening):
        task.cancel()
    for connection in pool:
        if connection.transport is not None:
            connection.transport.close()
    cuts = statistics.quantiles(latencies, n=100) if len(latencies) > 1 else [0.0] * 99
    return LoadResult(
        answered,
        max(sent, seconds),
        cuts[49] * 1000,
        cuts[98] * 1000,
        schedule.failed + unanswered,
        "open loop",
    )
