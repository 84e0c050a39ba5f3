"""The baseline: a bare ``websockets`` broadcast server, no parsing, no rooms, no auth.

Listeners connect to ``/listen``; every binary message received on ``/speak`` is passed to
``websockets.broadcast`` (which writes to each connection's transport without waiting). Its
figures go to a JSON file once a second, like the Townsquare node's.
``python -m bench.rooms.baseline --port P --stats FILE``
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import resource
import time
from collections import deque
from pathlib import Path

import orjson
import uvloop
from websockets.asyncio.server import ServerConnection, broadcast, serve

listeners: set[ServerConnection] = set()
latencies: deque[float] = deque(maxlen=10_000)
deliveries = 0


async def handler(connection: ServerConnection) -> None:
    global deliveries
    if connection.request is not None and connection.request.path.startswith("/speak"):
        async for message in connection:
            started = time.monotonic()
            broadcast(listeners, message)
            deliveries += len(listeners)
            latencies.append(time.monotonic() - started)
        return
    listeners.add(connection)
    try:
        await connection.wait_closed()
    finally:
        listeners.discard(connection)


async def write_stats(path: Path) -> None:
    while True:
        await asyncio.sleep(1.0)
        figures = {
            "deliveries": deliveries,
            "skipped": 0,
            "cut_off": 0,
            "latencies": list(latencies),
            "listeners": len(listeners),
            "admitted": 0,
            "refused": 0,
        }
        partial = path.with_suffix(".partial")
        partial.write_bytes(orjson.dumps(figures))
        os.replace(partial, path)


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--stats", type=Path, required=True)
    args = parser.parse_args()
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    writer = asyncio.create_task(write_stats(args.stats))
    gc.freeze()
    async with serve(handler, "127.0.0.1", args.port, compression=None, max_queue=4, backlog=4096):
        await asyncio.Future()
    writer.cancel()


if __name__ == "__main__":
    uvloop.run(main())
