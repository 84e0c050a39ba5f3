"""Load generation: wrk with a Lua script when installed, else an asyncio httpx generator."""

from __future__ import annotations

import asyncio
import json
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
