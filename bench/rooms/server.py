"""One Townsquare node for the rooms benchmark: ``create_app`` under uvicorn, with the options
``townsquare serve`` uses, writing its relay's figures to a JSON file once a second.

``python -m bench.rooms.server --port P --data-dir D --stats FILE [--ws auto]``; settings come
from the ``TOWNSQUARE_*`` environment, as for ``townsquare serve``.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import importlib.util
import os
import resource
from pathlib import Path

import orjson
import uvicorn

from townsquare.app import create_app
from townsquare.cli.serve import prepare_instance
from townsquare.config import Settings
from townsquare.rooms.hub import RoomHub
from townsquare.rooms.wire import RoomsWebSocketProtocol
from townsquare.state import state_of


async def write_stats(app: object, path: Path) -> None:
    from fastapi import FastAPI

    assert isinstance(app, FastAPI)
    while True:
        await asyncio.sleep(1.0)
        hub = state_of(app).extras.get("rooms")
        if not isinstance(hub, RoomHub):
            continue
        stats = hub.stats
        figures = {
            "deliveries": stats.deliveries,
            "skipped": stats.skipped,
            "cut_off": stats.cut_off,
            "latencies": list(stats.latencies),
            "listeners": sum(len(relay.listeners) for relay in hub.relays.values()),
            "admitted": hub.admission.admitted,
            "refused": hub.admission.refused,
        }
        partial = path.with_suffix(".partial")
        partial.write_bytes(orjson.dumps(figures))
        os.replace(partial, path)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--stats", type=Path, required=True)
    parser.add_argument("--ws", default="auto")
    parser.add_argument("--prepare", action="store_true", help="Migrate the database first.")
    return parser.parse_args()


async def main(args: argparse.Namespace) -> None:
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    settings = Settings(data_dir=args.data_dir)
    app = create_app(settings, migrate=False)
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=args.port,
        http="httptools",
        # As ``townsquare serve`` runs it, unless another implementation is asked for.
        ws=RoomsWebSocketProtocol if args.ws == "auto" else args.ws,
        log_level="warning",
        access_log=False,
        server_header=False,
        proxy_headers=False,
        backlog=4096,
    )
    server = uvicorn.Server(config)
    writer = asyncio.create_task(write_stats(app, args.stats))
    # Long-lived objects made at start-up are not scanned again by every collection.
    gc.freeze()
    await server.serve()
    writer.cancel()


if __name__ == "__main__":
    arguments = parse_args()
    if arguments.prepare:
        prepare_instance(Settings(data_dir=arguments.data_dir))
    if importlib.util.find_spec("uvloop"):
        import uvloop

        uvloop.run(main(arguments))
    else:
        asyncio.run(main(arguments))
