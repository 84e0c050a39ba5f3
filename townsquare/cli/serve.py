"""``townsquare serve`` and ``townsquare migrate``."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import click

from townsquare.cli.options import settings_from, storage_options
from townsquare.config import Settings
from townsquare.db.migrate import upgrade
from townsquare.shield.server import uvicorn_options

GRACEFUL_SHUTDOWN_SECONDS = 5
# The supervisor restarts a worker that does not answer its ping in this time. uvicorn's five
# seconds kill healthy workers that are still importing on a busy machine, again and again.
WORKER_HEALTHCHECK_SECONDS = 30
WEBSOCKET_PING_SECONDS = 5.0
# Connections the kernel may hold waiting to be accepted (capped by net.core.somaxconn). A join
# storm on a busy worker otherwise overflows uvicorn's 2,048 and its connections are dropped.
LISTEN_BACKLOG = 4096


def prepare_instance(settings: Settings) -> None:
    """What must happen once per instance before any worker starts: schema and signing key."""
    from townsquare.oauth.signing import secret_key

    settings.data_dir.mkdir(parents=True, exist_ok=True)
    upgrade(settings.effective_database_url)
    # Created here, in one process, so workers starting together never race to write it.
    secret_key(settings)


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(0, 65535))
@click.option(
    "--workers",
    default=1,
    show_default=True,
    type=click.IntRange(1, 256),
    help="Worker processes; more than one runs uvicorn's multi-process supervisor.",
)
@storage_options
def serve(
    host: str, port: int, workers: int, data_dir: Path | None, database_url: str | None
) -> None:
    """Apply migrations, then serve the Mastodon API and the web app over HTTP."""
    import uvicorn

    from townsquare.rooms.wire import RoomsWebSocketProtocol

    if "TOWNSQUARE_DOMAIN" not in os.environ and host not in ("0.0.0.0", "::"):
        # Without a configured domain, links and OAuth endpoints point where we listen.
        os.environ["TOWNSQUARE_DOMAIN"] = f"{host}:{port}"
    settings = settings_from(data_dir, database_url)
    prepare_instance(settings)
    click.echo(
        f"Townsquare on http://{host}:{port} ({workers} worker(s), "
        f"{'SQLite in ' + str(settings.data_dir) if settings.is_sqlite else 'PostgreSQL'})",
        err=True,
    )
    uvicorn.run(
        "townsquare.asgi:app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        loop="uvloop" if importlib.util.find_spec("uvloop") else "asyncio",
        # Deadlines for request heads and bodies, caps per client address (the shield's
        # connection layer, which uvicorn does not have by itself).
        **uvicorn_options(settings),
        # uvicorn's WebSocket protocol, offering rooms the transport to write live audio to.
        ws=RoomsWebSocketProtocol,
        # A WebSocket client that stops reading (a frozen listener) stops answering pings too:
        # it is closed about ten seconds later instead of holding a buffer for ever.
        ws_ping_interval=WEBSOCKET_PING_SECONDS,
        ws_ping_timeout=WEBSOCKET_PING_SECONDS,
        backlog=LISTEN_BACKLOG,
        # Behind a proxy the shield decides which forwarded addresses to trust, not uvicorn.
        proxy_headers=False,
        server_header=False,
        access_log=settings.log_level == "debug",
        log_level=settings.log_level,
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_SECONDS,
        timeout_worker_healthcheck=WORKER_HEALTHCHECK_SECONDS,
    )


@click.command()
@storage_options
def migrate(data_dir: Path | None, database_url: str | None) -> None:
    """Bring the database schema up to date (serve does this too)."""
    settings = settings_from(data_dir, database_url)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    upgrade(settings.effective_database_url)
    click.echo("Database schema is up to date.")
