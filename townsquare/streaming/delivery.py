"""Turning events (which carry ids) into what each subscriber may see, at delivery time.

Privacy is decided here, when the event goes out, not when it was published: a block or a mute
made a second ago already holds. Statuses on shared channels (public, local, hashtags) are
rendered once without viewer-specific flags and then filtered per viewer by the accounts that
viewer hides; statuses and notifications on personal channels are rendered once per viewer.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from collections.abc import Iterable, Sequence
from typing import Any

import orjson
from sqlalchemy.ext.asyncio import AsyncSession

from townsquare.conversations.models import ConversationMember
from townsquare.notifications.models import Notification
from townsquare.privacy import can_view_status, hidden_account_ids, is_blocked_either_way
from townsquare.state import AppState
from townsquare.statuses.models import Status
from townsquare.streaming.bus import ChannelEvent
from townsquare.streaming.connection import Subscription

log = logging.getLogger("townsquare.streaming")


class HiddenAccounts:
    """Each viewer's blocked-either-way, muted and suspended accounts, refreshed every few
    seconds rather than looked up for every event."""

    def __init__(self, ttl: float) -> None:
        self.ttl = ttl
        self._cache: dict[int | None, tuple[float, frozenset[int]]] = {}

    async def get(self, session: AsyncSession, viewer_id: int | None) -> frozenset[int]:
        now = time.monotonic()
        cached = self._cache.get(viewer_id)
        if cached is not None and now - cached[0] < self.ttl:
            return cached[1]
        hidden = frozenset(await hidden_account_ids(session, viewer_id))
        self._cache[viewer_id] = (now, hidden)
        return hidden

    def forget_stale(self) -> None:
        now = time.monotonic()
        for viewer_id, (fetched, _) in list(self._cache.items()):
            if now - fetched >= self.ttl:
                del self._cache[viewer_id]


def involved_accounts(entity: dict[str, Any]) -> set[int]:
    """Author, reblogged author and mentioned accounts of a rendered status."""
    ids: set[int] = set()
    for part in (entity, entity.get("reblog") or {}):
        account = part.get("account") or {}
        if "id" in account:
            ids.add(int(account["id"]))
        for mention in part.get("mentions") or ():
            ids.add(int(mention["id"]))
    return ids


def _json(entity: Any) -> str:
    return orjson.dumps(entity).decode()


def _payload_id(payload: Any, key: str) -> int | None:
    if isinstance(payload, dict):
        value = payload.get(key)
    else:
        value = payload
    try:
        return int(value) if value is not None else None
    except (TypeError, ValueError):
        return None


def _by_viewer(subscriptions: Iterable[Subscription]) -> dict[int, list[Subscription]]:
    groups: dict[int, list[Subscription]] = defaultdict(list)
    for subscription in subscriptions:
        if subscription.viewer_id is not None:
            groups[subscription.viewer_id].append(subscription)
    return groups


class Delivery:
    def __init__(self, state: AppState, hidden: HiddenAccounts) -> None:
        self.state = state
        self.hidden = hidden

    async def deliver(self, batch: Sequence[tuple[ChannelEvent, list[Subscription]]]) -> None:
        async with self.state.db.read() as session:
            for event, subscriptions in batch:
                wanted = [s for s in subscriptions if s.accepts(event.event)]
                if not wanted:
                    continue
                try:
                    await self._deliver_one(session, event, wanted)
                except Exception:
                    log.exception("delivering stream event %s failed", event.id)
                    await session.rollback()

    async def _deliver_one(
        self, session: AsyncSession, event: ChannelEvent, subscriptions: list[Subscription]
    ) -> None:
        kind = event.event
        if kind == "delete":
            status_id = _payload_id(event.payload, "status_id")
            if status_id is not None:
                for subscription in subscriptions:
                    subscription.send("delete", str(status_id))
        elif kind in ("update", "status.update"):
            status_id = _payload_id(event.payload, "status_id")
            status = await session.get(Status, status_id) if status_id is not None else None
            if status is None:
                return
            shared = [s for s in subscriptions if s.shared]
            personal = [s for s in subscriptions if not s.shared]
            if shared:
                await self._status_to_everyone(session, kind, status, shared)
            if personal:
                await self._status_to_viewers(session, kind, status, personal)
        elif kind == "notification":
            await self._notification(session, event, subscriptions)
        elif kind == "conversation":
            await self._conversation(session, event, subscriptions)
        else:
            payload = event.payload if isinstance(event.payload, str) else _json(event.payload)
            for subscription in subscriptions:
                subscription.send(kind, payload)

    async def _status_to_everyone(
        self, session: AsyncSession, kind: str, status: Status, subscriptions: list[Subscription]
    ) -> None:
        from townsquare.statuses.entities import render_statuses  # type: ignore[import-not-found,unused-ignore]

        if not await can_view_status(session, None, status):
            return
        rendered = await render_statuses(session, self.state, None, [status])
        if not rendered:
            return
        entity = rendered[0]
        payload = _json(entity)
        involved = involved_accounts(entity)
        has_media = bool(entity.get("media_attachments"))
        for subscription in subscriptions:
            if subscription.media_only and not has_media:
                continue
            hidden = await self.hidden.get(session, subscription.viewer_id)
            if involved & hidden:
                continue
            subscription.send(kind, payload)

    async def _status_to_viewers(
        self, session: AsyncSession, kind: str, status: Status, subscriptions: list[Subscription]
    ) -> None:
        from townsquare.statuses.entities import render_statuses

        for viewer_id, group in _by_viewer(subscriptions).items():
            if not await can_view_status(session, viewer_id, status):
                continue
            rendered = await render_statuses(session, self.state, viewer_id, [status])
            if not rendered:
                continue
            entity = rendered[0]
            if involved_accounts(entity) & await self.hidden.get(session, viewer_id):
                continue
            payload = _json(entity)
            for subscription in group:
                subscription.send(kind, payload)

    async def _notification(
        self, session: AsyncSession, event: ChannelEvent, subscriptions: list[Subscription]
    ) -> None:
        from townsquare.notifications.entities import render_notifications  # type: ignore[import-not-found,unused-ignore]

        notification_id = _payload_id(event.payload, "notification_id")
        if notification_id is None:
            return
        notification = await session.get(Notification, notification_id)
        if notification is None:
            return
        group = _by_viewer(subscriptions).get(notification.account_id)
        if not group:
            return
        viewer_id = notification.account_id
        # Mutes were weighed when the notification was made; a block made since still holds.
        if await is_blocked_either_way(session, viewer_id, notification.from_account_id):
            return
        if notification.status_id is not None:
            status = await session.get(Status, notification.status_id)
            if status is None or not await can_view_status(session, viewer_id, status):
                return
        rendered = await render_notifications(session, self.state, viewer_id, [notification])
        if not rendered:
            return
        payload = _json(rendered[0])
        for subscription in group:
            subscription.send("notification", payload)

    async def _conversation(
        self, session: AsyncSession, event: ChannelEvent, subscriptions: list[Subscription]
    ) -> None:
        conversation_id = _payload_id(event.payload, "conversation_id")
        viewer_id = _payload_id(event.payload, "account_id")
        if conversation_id is None or viewer_id is None:
            return
        group = _by_viewer(subscriptions).get(viewer_id)
        if not group:
            return
        from townsquare.conversations.entities import render_conversations

        member = await session.get(ConversationMember, (conversation_id, viewer_id))
        if member is None or member.hidden:
            return
        rendered = await render_conversations(session, self.state, viewer_id, [member])
        if not rendered:
            return
        payload = _json(rendered[0])
        for subscription in group:
            subscription.send("conversation", payload)
