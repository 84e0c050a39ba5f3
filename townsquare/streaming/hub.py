"""The streaming hub of one worker process: open connections, their subscriptions, and the
tailer that feeds them.

Routes open a connection, subscribe it to streams, and read its mailbox; the tailer reads the
event log and hands each event to :class:`Delivery` with the subscriptions of its channel.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

from sqlalchemy import or_, select

from townsquare.accounts.models import Account
from townsquare.api.auth import Viewer
from townsquare.api.errors import ApiError
from townsquare.db.base import utcnow
from townsquare.oauth.models import OAuthToken
from townsquare.state import AppState
from townsquare.streaming.bus import ChannelEvent, EventBus, LocalEventBus
from townsquare.streaming.connection import ConnectionRegistry, StreamConnection, Subscription
from townsquare.streaming.delivery import Delivery, HiddenAccounts
from townsquare.streaming.publish import add_commit_listener, remove_commit_listener
from townsquare.streaming.shutdown import SignalHook
from townsquare.streaming.streams import StreamRequest, resolve_stream
from townsquare.streaming.tailer import EventTailer

EXTRAS_KEY = "streaming"
# How often open streams are checked against revoked tokens and suspended accounts.
TOKEN_RECHECK_SECONDS = 30.0

log = logging.getLogger("townsquare.streaming")


class StreamingHub:
    def __init__(self, state: AppState, bus: EventBus | None = None) -> None:
        settings = state.settings
        self.state = state
        self.bus: EventBus = bus or LocalEventBus()
        self.registry = ConnectionRegistry(
            per_account=settings.streaming_max_connections_per_account,
            per_address=settings.streaming_max_connections_per_address,
        )
        self.hidden = HiddenAccounts(ttl=settings.streaming_hidden_refresh)
        self.delivery = Delivery(state, self.hidden)
        self.tailer = EventTailer(
            state.db,
            self.dispatch,
            poll_interval=settings.streaming_poll_interval,
            retention=settings.streaming_event_retention,
            listened=self.bus.listened,
        )
        self.heartbeat = settings.streaming_heartbeat
        self.max_subscriptions = settings.streaming_max_subscriptions
        self.closing = False
        self._signals = SignalHook(self.close_all)
        self._last_cache_sweep = time.monotonic()
        self._token_check: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self.tailer.start()
        add_commit_listener(self.tailer.wake)
        self._signals.install()
        self._token_check = asyncio.create_task(
            self._close_revoked_forever(), name="stream-token-check"
        )

    async def stop(self) -> None:
        self._signals.remove()
        remove_commit_listener(self.tailer.wake)
        self.close_all()
        if self._token_check is not None:
            self._token_check.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._token_check
        await self.tailer.stop()

    async def close_revoked(self) -> int:
        """Close streams whose token was revoked or expired, or whose account was suspended
        since they opened; returns how many."""
        connections = self.registry.connections()
        token_ids = sorted({c.token_id for c in connections if c.token_id is not None})
        valid: set[int] = set()
        async with self.state.db.read() as session:
            for start in range(0, len(token_ids), 500):
                chunk = token_ids[start : start + 500]
                rows = await session.scalars(
                    select(OAuthToken.id)
                    .join(Account, Account.id == OAuthToken.account_id)
                    .where(
                        OAuthToken.id.in_(chunk),
                        OAuthToken.revoked_at.is_(None),
                        or_(OAuthToken.expires_at.is_(None), OAuthToken.expires_at > utcnow()),
                        Account.suspended_at.is_(None),
                    )
                )
                valid.update(rows.all())
        closed = 0
        for connection in connections:
            if connection.token_id is not None and connection.token_id not in valid:
                connection.close()
                closed += 1
        return closed

    async def _close_revoked_forever(self) -> None:
        while True:
            await asyncio.sleep(TOKEN_RECHECK_SECONDS)
            try:
                await self.close_revoked()
            except Exception:
                log.warning("checking streaming tokens failed", exc_info=True)

    def close_all(self) -> None:
        """Close every stream: clients reconnect elsewhere while this process goes away."""
        self.closing = True
        self.registry.close_all()

    def open(self, viewer: Viewer, *, address: str) -> StreamConnection:
        if self.closing:
            raise ApiError(503, "The server is shutting down")
        connection = StreamConnection(
            account_id=viewer.account_id,
            scopes=viewer.scopes,
            address=address,
            queue_limit=self.state.settings.streaming_queue_limit,
            token_id=viewer.token_id,
        )
        refusal = self.registry.admit(connection)
        if refusal is not None:
            raise ApiError(429, refusal)
        return connection

    def close(self, connection: StreamConnection) -> None:
        for subscription in connection.subscriptions.values():
            self._detach(subscription)
        connection.subscriptions.clear()
        self.registry.release(connection)
        connection.close()

    async def subscribe(self, connection: StreamConnection, request: StreamRequest) -> Subscription:
        existing = connection.subscriptions.get(request.key)
        if existing is not None:
            return existing
        if len(connection.subscriptions) >= self.max_subscriptions:
            raise ApiError(429, "Too many subscriptions on this connection")
        async with self.state.db.read() as session:
            subscription = await resolve_stream(session, connection, request)
        if connection.mailbox.closed:
            raise ApiError(410, "The connection is closed")
        connection.subscriptions[request.key] = subscription
        for channel in subscription.channels:
            self.bus.subscribe(channel, subscription)
        return subscription

    def unsubscribe(self, connection: StreamConnection, request: StreamRequest) -> None:
        subscription = connection.subscriptions.pop(request.key, None)
        if subscription is not None:
            self._detach(subscription)

    def _detach(self, subscription: Subscription) -> None:
        for channel in subscription.channels:
            self.bus.unsubscribe(channel, subscription)

    async def dispatch(self, events: list[ChannelEvent]) -> None:
        batch = [
            (event, subs) for event in events if (subs := self.bus.subscriptions(event.channel))
        ]
        if batch:
            await self.delivery.deliver(batch)
        if time.monotonic() - self._last_cache_sweep > self.hidden.ttl:
            self._last_cache_sweep = time.monotonic()
            self.hidden.forget_stale()


def hub_of(state: AppState) -> StreamingHub:
    hub = state.extras.get(EXTRAS_KEY)
    if not isinstance(hub, StreamingHub):
        raise ApiError(503, "Streaming is not available")
    return hub


async def start_streaming(state: AppState) -> None:
    hub = StreamingHub(state)
    await hub.start()
    state.extras[EXTRAS_KEY] = hub


async def stop_streaming(state: AppState) -> None:
    hub = state.extras.pop(EXTRAS_KEY, None)
    if isinstance(hub, StreamingHub):
        await hub.stop()
