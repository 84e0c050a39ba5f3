"""``python -m bench.attack.request_cost``: server CPU spent per anonymous flood request.

Starts ``townsquare serve`` (one worker, the whole app) on loopback with under-attack mode
forced on, then sends cache-busting anonymous reads of the public timeline, as the
``anon-flood`` scenario does, on keep-alive connections from many source addresses, and
reports the worker's CPU time per request and the answers. Each of those requests is refused
with a challenge; what it costs the worker to say so is what a flood takes from everyone
else. CPU time rather than latency, so a busy machine skews it less. Run it against another
checkout (``PYTHONPATH``) to compare two versions of the code.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

from bench.attack.wire import Connection, attacker_address, request_bytes
from tests.postgres_server import free_port


async def flood(port: int, requests: int, connections: int, run: int) -> dict[int, int]:
    statuses: dict[int, int] = {}
    remaining = iter(range(requests))

    async def client(i: int) -> None:
        connection = Connection("127.0.0.1", port, attacker_address(run, i))
        try:
            for _ in remaining:
                raw = request_bytes(
                    "GET",
                    f"/api/v1/timelines/public?local=true&max_id={random.randrange(10**17)}",
                    {"Accept": "application/json"},
                )
                try:
                    status = (await asyncio.wait_for(connection.send(raw), 5.0)).status
                except (TimeoutError, ConnectionError, OSError):
                    connection.close()
                    status = 0
                statuses[status] = statuses.get(status, 0) + 1
        finally:
            connection.close()

    await asyncio.gather(*(client(i) for i in range(connections)))
    return statuses


def wait_ready(port: int, seconds: float = 60.0) -> None:
    async def probe() -> int:
        connection = Connection("127.0.0.1", port)
        try:
            return (await connection.send(request_bytes("GET", "/healthz"))).status
        finally:
            connection.close()

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if asyncio.run(probe()) == 200:
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise RuntimeError("the server did not start")


def main() -> None:
    parser = argparse.ArgumentParser(
        prog="python -m bench.attack.request_cost", description=__doc__
    )
    parser.add_argument("--requests", type=int, default=20_000)
    parser.add_argument("--connections", type=int, default=100)
    parser.add_argument("--label", default=os.environ.get("PYTHONPATH") or "this checkout")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as data_dir:
        port = free_port()
        env = {
            **os.environ,
            "TOWNSQUARE_DOMAIN": f"127.0.0.1:{port}",
            "TOWNSQUARE_SHIELD_ATTACK_MODE": "on",
            # Only the challenge is measured: no refusals for lag on a busy machine.
            "TOWNSQUARE_SERVER_LAG_THRESHOLD": "0",
            "TOWNSQUARE_LOG_LEVEL": "warning",
        }
        command = [str(Path(sys.executable).parent / "townsquare"), "serve", "--port", str(port)]
        command += ["--workers", "1", "--data-dir", data_dir]
        process = subprocess.Popen(
            command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        try:
            wait_ready(port)
            server = psutil.Process(process.pid)
            # Warm up: every client's connection opened once, code paths run once.
            asyncio.run(flood(port, args.connections, args.connections, 40))
            before = sum(server.cpu_times()[:2])
            started = time.monotonic()
            statuses = asyncio.run(flood(port, args.requests, args.connections, 41))
            seconds = time.monotonic() - started
            cpu = sum(server.cpu_times()[:2]) - before
            per = cpu / args.requests * 1e6
            print(
                f"| {args.label} | {args.requests:,} | {seconds:.1f} s | {cpu:.2f} s "
                f"| {per:.0f} µs | {dict(sorted(statuses.items()))} "
                f"| {os.getloadavg()[0]:.1f} |"
            )
        finally:
            process.terminate()
            process.wait(10)


if __name__ == "__main__":
    main()
