"""The application factory: the whole request path, outermost first, in one place."""

from __future__ import annotations

import asyncio
import gc
import logging
from collections.abc import AsyncIterator, Coroutine
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from starlette.middleware.cors import CORSMiddleware

from townsquare import __version__
from townsquare.accounts import routes as accounts
from townsquare.api.errors import install_error_handlers
from townsquare.api.responses import FastJSON
from townsquare.cluster.failover import FailoverRetryMiddleware
from townsquare.config import Settings
from townsquare.conversations import routes as conversations
from townsquare.db.engine import Database
from townsquare.db.group_commit import close_group_commit
from townsquare.db.migrate import upgrade
from townsquare.graph import routes as graph
from townsquare.instance import health
from townsquare.instance import routes as instance
from townsquare.media import routes as media
from townsquare.moderation import routes as moderation
from townsquare.notifications import routes as notifications
from townsquare.oauth import routes as oauth
from townsquare.rooms import routes as rooms
from townsquare.search import routes as search
from townsquare.shield import routes as shield
from townsquare.shield.admission import AdmissionMiddleware
from townsquare.shield.ratelimit import RateLimitMiddleware
from townsquare.shield.state import ShieldState
from townsquare.state import AppState
from townsquare.statuses import routes as statuses
from townsquare.streaming import routes as streaming
from townsquare.timelines import routes as timelines
from townsquare.web import routes as web

log = logging.getLogger("townsquare")

# A request is matched against the routers in this order, route by route, so the ones asked
# most often come first: timelines (the home page above all), then posting, then streaming and
# room connections. Routers whose paths overlap (accounts before graph, the web pages last) keep
# their order.
ROUTERS = (
    timelines.router,
    statuses.router,
    health.router,
    streaming.router,
    rooms.router,
    shield.router,
    instance.router,
    oauth.router,
    accounts.router,
    graph.router,
    notifications.router,
    conversations.router,
    search.router,
    media.router,
    moderation.router,
    web.router,
)


# A stopping process must stop, even when a connection hangs on its way out.
SHUTDOWN_STEP_SECONDS = 10.0


async def _within(seconds: float, step: str, work: Coroutine[Any, Any, None]) -> None:
    """Run one shutdown step for at most ``seconds``, then go on without it."""
    task = asyncio.ensure_future(work)
    # asyncio.wait, not wait_for: a task stuck in its cancellation must not hold us either.
    done, _pending = await asyncio.wait({task}, timeout=seconds)
    if task in done:
        task.result()
        return
    log.warning("shutdown: %s took over %.0f s; going on without it", step, seconds)
    task.cancel()


_startup_frozen = False


def _freeze_startup_objects() -> None:
    """Keep what the first app of the process made (modules, mappings, compiled statements,
    pools: it lives as long as the process) out of the garbage collector's full passes, which
    walked it all and held the event loop for 90-140 ms each, every request of the worker
    waiting (in one process serving home pages: after, 1.4 ms at most). Once per process, after
    a collection, so that no garbage is frozen with it (tests start many apps)."""
    global _startup_frozen
    if not _startup_frozen:
        _startup_frozen = True
        gc.collect()
        gc.freeze()


def create_app(settings: Settings | None = None, *, migrate: bool = True) -> FastAPI:
    settings = settings or Settings()
    db = Database(
        settings.effective_database_url,
        pool_size=settings.database_pool_size,
        read_url=settings.database_read_url,
    )
    state = AppState(settings=settings, db=db)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        if migrate:
            await asyncio.to_thread(upgrade, settings.effective_database_url)
        from townsquare.background import start_background, stop_background

        await start_background(state)
        _freeze_startup_objects()
        try:
            yield
        finally:
            await _within(SHUTDOWN_STEP_SECONDS, "stopping background work", stop_background(state))
            await _within(
                SHUTDOWN_STEP_SECONDS, "closing grouped writes", close_group_commit(state.extras)
            )
            await _within(SHUTDOWN_STEP_SECONDS, "closing database connections", db.dispose())

    app = FastAPI(
        title="Townsquare",
        version=__version__,
        lifespan=lifespan,
        default_response_class=FastJSON,
        docs_url=None,
        redoc_url=None,
        openapi_url="/api/openapi.json",
    )
    app.state.townsquare = state
    install_error_handlers(app)

    # Middleware, outermost first. Starlette wraps in reverse order of add_middleware, so the
    # list is added from its end: admission control decides first who is served and when
    # (and challenges anonymous floods); CORS answers preflights before any limit is counted;
    # the rate limits stand in front of everything that costs work.
    shield_state = ShieldState.from_settings(settings)
    state.extras["shield"] = shield_state
    app.add_middleware(
        RateLimitMiddleware,
        settings=settings,
        store=shield_state.counters,
        metrics=shield_state.metrics,
    )
    app.add_middleware(
        CORSMiddleware,
        allow_origins=["*"],
        allow_methods=["*"],
        allow_headers=["*"],
        expose_headers=[
            "Link",
            "X-RateLimit-Limit",
            "X-RateLimit-Remaining",
            "X-RateLimit-Reset",
            "Retry-After",
        ],
    )
    app.add_middleware(AdmissionMiddleware, shield=shield_state)
    # Outside admission: a request waiting out a database failover holds no slot meanwhile.
    app.add_middleware(FailoverRetryMiddleware, wait=settings.database_failover_wait, db=db)

    for router in ROUTERS:
        app.include_router(router)
    return app
