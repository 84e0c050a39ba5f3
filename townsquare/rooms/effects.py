"""What follows a room's start, after the request: its host's followers are told."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from townsquare.graph.models import Follow
from townsquare.jobs.queue import handler
from townsquare.notifications.service import notify
from townsquare.rooms.models import Room
from townsquare.state import AppState

BATCH = 500


@handler("rooms.notify_followers")
async def notify_followers(state: AppState, payload: dict[str, Any]) -> None:
    """A ``status`` notification (the room's announcement) for every follower of the host.

    Idempotent: ``notify`` creates one notification per event, so a rerun adds nothing.
    """
    room_id = int(payload["room_id"])
    async with state.db.read() as session:
        room = await session.get(Room, room_id)
        if room is None or room.status_id is None:
            return
        host_id, status_id = room.host_id, room.status_id
    after = 0
    while True:
        async with state.db.write() as session:
            followers = list(
                await session.scalars(
                    select(Follow.account_id)
                    .where(Follow.target_account_id == host_id, Follow.account_id > after)
                    .order_by(Follow.account_id)
                    .limit(BATCH)
                )
            )
            for follower_id in followers:
                await notify(
                    session,
                    recipient_id=follower_id,
                    from_account_id=host_id,
                    type="status",
                    status_id=status_id,
                )
        if len(followers) < BATCH:
            return
        after = followers[-1]
