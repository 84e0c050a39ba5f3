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
import json
import math
import shutil
import statistics
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

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
    return asyncio.run(_open_load(url, path, tokens, seconds, rate, connections))


class _Connection:
    """One keep-alive HTTP/1.1 connection, for GET requests answered with a Content-Length."""

    def __init__(self, host: str, port: int) -> None:
        self.host = host
        self.port = port
        self._streams: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None

    async def get(self, request: bytes) -> int:
        """The answer's status; a connection the server closed meanwhile is opened again once."""
        fresh = self._streams is None
        try:
            return await self._get(request)
        except (OSError, asyncio.IncompleteReadError):
            self.close()
            if fresh:
                raise
        return await self._get(request)

    async def _get(self, request: bytes) -> int:
        if self._streams is None:
            self._streams = await asyncio.open_connection(self.host, self.port)
        reader, writer = self._streams
        writer.write(request)
        head = await reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        length = None
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        if length is None:
            raise ConnectionError("answer without a Content-Length")
        await reader.readexactly(length)
        return status

    def close(self) -> None:
        if self._streams is not None:
            self._streams[1].close()
            self._streams = None


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
    latencies: list[float] = []
    failed = 0
    # First in, first out: every connection stays in use, none idles into the server's
    # keep-alive timeout.
    idle: asyncio.Queue[_Connection] = asyncio.Queue()
    for _ in range(connections):
        idle.put_nowait(_Connection(host, port))

    async def one(number: int, due: float) -> None:
        nonlocal failed
        connection = await idle.get()
        ok = False
        try:
            ok = await connection.get(requests[number % len(requests)]) < 400
        except (OSError, asyncio.IncompleteReadError, ValueError):
            connection.close()
        finally:
            idle.put_nowait(connection)
        latencies.append(time.perf_counter() - due)
        failed += not ok

    loop = asyncio.get_running_loop()
    tasks = []
    started = time.perf_counter()
    for number in range(total):
        due = started + number / rate
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(loop.create_task(one(number, due)))
    sent = time.perf_counter() - started
    done, pending = (
        await asyncio.wait(tasks, timeout=OPEN_LOOP_DRAIN_SECONDS) if tasks else ((), ())
    )
    for task in pending:
        task.cancel()
    failed += len(pending)
    latencies += [OPEN_LOOP_DRAIN_SECONDS] * len(pending)
    while not idle.empty():
        idle.get_nowait().close()
    cuts = statistics.quantiles(latencies, n=100) if len(latencies) > 1 else [0.0] * 99
    return LoadResult(
        len(done), max(sent, seconds), cuts[49] * 1000, cuts[98] * 1000, failed, "open loop"
    )
