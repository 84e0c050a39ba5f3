"""``python -m bench.attack.refusal_cost``: server CPU spent per refused connection.

A handshake flood is refused either when the connection is accepted (the connection rate,
or an overloaded worker turning away unknown addresses), before a parser exists, or once its
request head has been parsed (the per-address handshake count). This starts one uvicorn
worker with the connection layer and a trivial app on loopback, sends the same WebSocket
handshakes refused each way, and reports the worker's CPU time per connection. CPU time
rather than latency, so a busy machine skews it less; both ways run in the same invocation.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import subprocess
import sys
import tempfile
import time

import psutil

from bench.attack.wire import attacker_address
from tests.postgres_server import free_port

SERVER = """
import sys, uvicorn
from townsquare.config import Settings
from townsquare.shield.server import uvicorn_options

async def app(scope, receive, send):
    if scope["type"] == "http":
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

options = uvicorn_options(Settings(data_dir=sys.argv[2]))
uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="critical",
            lifespan="off", **options)
"""

HANDSHAKE = (
    b"GET /api/v1/streaming?stream=public&access_token=forged HTTP/1.1\r\nHost: 127.0.0.1\r\n"
    b"Upgrade: websocket\r\nConnection: Upgrade\r\n"
    b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
)

WAYS = {
    # Every connection after an address's first is over its connection rate.
    "at accept": {
        "TOWNSQUARE_SERVER_CONNECTION_RATE_PER_ADDRESS": "1/hour",
        "TOWNSQUARE_SERVER_CONNECTION_RATE_PER_PREFIX": "1000000/hour",
    },
    # Connections let in; every handshake after an address's first is over its count.
    "after the head": {
        "TOWNSQUARE_SERVER_CONNECTION_RATE_PER_ADDRESS": "1000000/hour",
        "TOWNSQUARE_SERVER_CONNECTION_RATE_PER_PREFIX": "1000000/hour",
        "TOWNSQUARE_RATE_LIMIT_STREAMING_ADDRESS": "1/hour",
    },
}


async def flood(port: int, connections: int, addresses: int, concurrency: int) -> dict[int, int]:
    statuses: dict[int, int] = {}
    queue = iter(range(connections))

    async def one(source: str) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port, local_addr=(source, 0))
        try:
            writer.write(HANDSHAKE)
            answer = await reader.read(12)
            status = int(answer[9:12]) if answer.startswith(b"HTTP/") else 0
        except (ConnectionError, OSError):
            status = 0
        finally:
            writer.transport.abort()
        statuses[status] = statuses.get(status, 0) + 1

    async def worker() -> None:
        for i in queue:
            try:
                await asyncio.wait_for(one(attacker_address(90, i % addresses)), 5.0)
            except (TimeoutError, ConnectionError, OSError):
                statuses[-1] = statuses.get(-1, 0) + 1

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return statuses


def measure(way: str, env: dict[str, str], args: argparse.Namespace, data_dir: str) -> None:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-c", SERVER, str(port), data_dir],
        env={**os.environ, **env},
    )
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                time.sleep(0.1)
        server = psutil.Process(process.pid)
        # Warm up: each address's first connection is let in.
        asyncio.run(flood(port, args.addresses, args.addresses, args.concurrency))
        before = sum(server.cpu_times()[:2])
        started = time.monotonic()
        statuses = asyncio.run(flood(port, args.connections, args.addresses, args.concurrency))
        seconds = time.monotonic() - started
        cpu = sum(server.cpu_times()[:2]) - before
        per = cpu / args.connections * 1e6
        print(
            f"| {way} | {args.connections:,} | {seconds:.1f} s | {cpu:.2f} s | {per:.0f} µs "
            f"| {dict(sorted(statuses.items()))} | {os.getloadavg()[0]:.1f} |"
        )
    finally:
        process.terminate()
        process.wait(10)


def main() -> None:
    parser = argparse.ArgumentParser(
        prog="python -m bench.attack.refusal_cost", description=__doc__
    )
    parser.add_argument("--connections", type=int, default=5_000)
    parser.add_argument("--addresses", type=int, default=200)
    # Refused connections are held a few seconds before their answer (REFUSAL_DELAY in
    # townsquare/shield/server.py), so a flood keeps many open at once: at 50 at a time the
    # run took minutes and the worker's idle loop weighed on the CPU per connection.
    parser.add_argument("--concurrency", type=int, default=1_000)
    args = parser.parse_args()
    print("| refused | connections | took | server CPU | per connection | answers | load avg |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    with tempfile.TemporaryDirectory() as data_dir:
        for way, env in WAYS.items():
            measure(way, env, args, data_dir)


if __name__ == "__main__":
    main()
