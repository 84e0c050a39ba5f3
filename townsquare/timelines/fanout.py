"""Fan-out on write: a committed status becomes rows in its readers' home feeds.

Statuses and follows enqueue jobs here in their own transaction; the job runners deliver them.
Every handler is idempotent (rows are inserted-or-ignored and events are published only for rows
actually inserted), so a job that runs twice after a crash changes nothing the second time.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from townsquare.graph.models import Follow
from townsquare.jobs.queue import enqueue, handler
from townsquare.state import AppState
from townsquare.statuses.models import Status
from townsquare.streaming.publish import publish_many
from townsquare.timelines.feed_store import (
    add_feed_entries,
    batches,
    remove_author_from_feed,
)
from townsquare.timelines.recipients import (
    HOME_VISIBILITIES,
    accounts_hiding,
    home_recipients,
    is_pulled_author,
    list_audience,
    public_channels,
    tag_followers,
)

BACKFILL_SIZE = 40


def enqueue_fanout(session: AsyncSession, status: Status) -> None:
    """Deliver ``status`` to home feeds and streams once the caller's transaction commits."""
    if status.id is None:
        raise ValueError("a status needs its id before it can be fanned out")
    enqueue(session, "fanout", {"status_id": status.id})


def enqueue_backfill(session: AsyncSession, follower_id: int, target_id: int) -> None:
    """After a follow: copy the target's recent statuses into the follower's home feed."""
    enqueue(session, "backfill", {"follower_id": follower_id, "target_id": target_id})


def enqueue_unmerge(session: AsyncSession, follower_id: int, target_id: int) -> None:
    """After an unfollow: take the target's statuses out of the former follower's home feed.

    Home timelines also check follows when they are read, so this is tidying, not privacy.
    """
    enqueue(session, "unmerge", {"follower_id": follower_id, "target_id": target_id})


@handler("fanout")
async def run_fanout(state: AppState, payload: dict[str, Any]) -> None:
    status_id = int(payload["status_id"])
    async with state.db.read() as session:
        status = await session.get(Status, status_id)
        if status is None:
            return
        recipients = await home_recipients(
            session, status, pull_threshold=state.settings.fanout_pull_threshold
        )
        if recipients:
            delivered = set(recipients)
            recipients += [
                reader for reader in await tag_followers(session, status) if reader not in delivered
            ]
        stream_channels = await public_channels(session, status)
        stream_channels += [f"list:{list_id}" for list_id in await list_audience(session, status)]
        if recipients and await is_pulled_author(
            session, status.account_id, state.settings.fanout_pull_threshold
        ):
            # One event for all the followers of a very large account, instead of one each:
            # user streams of their followers listen on this channel.
            stream_channels.append(f"followers:{status.account_id}")
    event = {"status_id": status_id}

    if not recipients:
        # Direct statuses reach no home feed and no public stream; conversations carry them.
        return

    for batch in batches(recipients):
        async with state.db.write() as session:
            added = await add_feed_entries(session, [(account, status_id) for account in batch])
            added_accounts = {account for account, _ in added}
            channels = [f"user:{account}" for account in batch if account in added_accounts]
            # The author's own row is in the first batch: public and list streams are published
            # with it, and so exactly once.
            if status.account_id in added_accounts:
                channels += stream_channels
            await publish_many(session, channels, "update", event)


@handler("backfill")
async def run_backfill(state: AppState, payload: dict[str, Any]) -> None:
    follower_id = int(payload["follower_id"])
    target_id = int(payload["target_id"])
    async with state.db.read() as session:
        status_ids = await statuses_to_backfill(
            session,
            follower_id,
            target_id,
            pull_threshold=state.settings.fanout_pull_threshold,
        )
    if status_ids:
        async with state.db.write() as session:
            await add_feed_entries(session, [(follower_id, status_id) for status_id in status_ids])


async def statuses_to_backfill(
    session: AsyncSession, follower_id: int, target_id: int, *, pull_threshold: int
) -> list[int]:
    follow = await session.scalar(
        select(Follow).where(
            Follow.account_id == follower_id, Follow.target_account_id == target_id
        )
    )
    if follow is None or await is_pulled_author(session, target_id, pull_threshold):
        return []
    if follower_id in await accounts_hiding(session, {target_id}):
        return []
    followed_by_follower = select(Follow.target_account_id).where(Follow.account_id == follower_id)
    query = select(Status.id).where(
        Status.account_id == target_id,
        Status.visibility.in_(HOME_VISIBILITIES),
        or_(
            Status.in_reply_to_account_id.is_(None),
            Status.in_reply_to_account_id.in_((target_id, follower_id)),
            Status.in_reply_to_account_id.in_(followed_by_follower),
        ),
    )
    if not follow.show_reblogs:
        query = query.where(Status.reblog_of_id.is_(None))
    rows = await session.scalars(query.order_by(Status.id.desc()).limit(BACKFILL_SIZE))
    return list(rows.all())


@handler("unmerge")
async def run_unmerge(state: AppState, payload: dict[str, Any]) -> None:
    follower_id = int(payload["follower_id"])
    target_id = int(payload["target_id"])
    async with state.db.write() as session:
        refollowed = await session.scalar(
            select(Follow.id).where(
                Follow.account_id == follower_id, Follow.target_account_id == target_id
            )
        )
        if refollowed is None:
            await remove_author_from_feed(session, follower_id, target_id)
