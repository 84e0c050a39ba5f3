"""Fan-out on write: a committed status becomes rows in its readers' home feeds.

Statuses and follows enqueue jobs here in their own transaction; the job runners deliver them.
Every handler is idempotent (rows are inserted-or-ignored and events are published only for rows
actually inserted), so a job that runs twice after a crash changes nothing the second time.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from townsquare.graph.models import Follow
from townsquare.jobs.queue import Writes, batch_handler, enqueue, handler
from townsquare.state import AppState
from townsquare.statuses.models import Status
from townsquare.streaming.publish import EventRow, accounts_row, publish_rows
from townsquare.timelines.feed_store import (
    add_feed_entries,
    remove_author_from_feed,
)
from townsquare.timelines.recipients import (
    HOME_VISIBILITIES,
    AuthorAudience,
    accounts_hiding,
    author_audiences,
    feeds_holding,
    home_recipients,
    is_pulled_author,
    list_audience,
    public_channels,
    status_tags,
    tag_followers,
)

BACKFILL_SIZE = 40
# The job kind that delivers a new status.
FANOUT = "fanout"


def enqueue_fanout(session: AsyncSession, status: Status) -> None:
    """Deliver ``status`` to home feeds and streams once the caller's transaction commits."""
    if status.id is None:
        raise ValueError("a status needs its id before it can be fanned out")
    enqueue(session, FANOUT, {"status_id": status.id})


def enqueue_backfill(session: AsyncSession, follower_id: int, target_id: int) -> None:
    """After a follow: copy the target's recent statuses into the follower's home feed."""
    enqueue(session, "backfill", {"follower_id": follower_id, "target_id": target_id})


def enqueue_unmerge(session: AsyncSession, follower_id: int, target_id: int) -> None:
    """After an unfollow: take the target's statuses out of the former follower's home feed.

    Home timelines also check follows when they are read, so this is tidying, not privacy.
    """
    enqueue(session, "unmerge", {"follower_id": follower_id, "target_id": target_id})


@dataclass(frozen=True)
class Delivery:
    """Where one status goes: home feeds (the author first) and the streams published with
    the author's row."""

    status_id: int
    author_id: int
    recipients: list[int]
    stream_channels: list[str]
    reblog_of_id: int | None = None


async def _delivery(
    session: AsyncSession, status: Status, audience: AuthorAudience, tags: list[tuple[int, str]]
) -> Delivery | None:
    recipients = await home_recipients(session, status, audience)
    if not recipients:
        # Direct statuses reach no home feed and no public stream; conversations carry them.
        return None
    delivered = set(recipients)
    recipients += [
        reader
        for reader in await tag_followers(session, status, tags, audience)
        if reader not in delivered
    ]
    stream_channels = public_channels(status, tags)
    stream_channels += [
        f"list:{list_id}" for list_id in await list_audience(session, status, audience)
    ]
    if audience.pulled:
        # One event for all the followers of a very large account, instead of one each:
        # user streams of their followers listen on this channel.
        stream_channels.append(f"followers:{status.account_id}")
    return Delivery(status.id, status.account_id, recipients, stream_channels, status.reblog_of_id)


async def plan_fanouts(state: AppState, status_ids: list[int]) -> list[Delivery]:
    """Who gets each status, read without taking the write lock (statuses deleted since are
    skipped). The authors' followers, mutes, blocks and lists and the statuses' hashtags are
    read once for the whole batch."""
    wanted = list(dict.fromkeys(status_ids))
    async with state.db.read() as session:
        statuses = {
            status.id: status
            for status in await session.scalars(select(Status).where(Status.id.in_(wanted)))
        }
        delivered = [
            status for status in statuses.values() if status.visibility in HOME_VISIBILITIES
        ]
        audiences = await author_audiences(
            session,
            {status.account_id for status in delivered},
            pull_threshold=state.settings.fanout_pull_threshold,
        )
        tags = await status_tags(
            session, [status.id for status in delivered if status.visibility == "public"]
        )
        deliveries = []
        # The feeds this batch gives each original, as itself or as a reblog of it: a reblog
        # skips the feeds already holding its original, and those written in this batch are
        # not yet in the table to be found.
        planned: dict[int, set[int]] = defaultdict(set)
        for status_id in wanted:
            status = statuses.get(status_id)
            if status is None or status.visibility not in HOME_VISIBILITIES:
                continue
            delivery = await _delivery(
                session, status, audiences[status.account_id], tags.get(status_id, [])
            )
            if delivery is None:
                continue
            original_id = status.reblog_of_id or status.id
            if status.reblog_of_id is not None and planned[original_id]:
                author, *readers = delivery.recipients
                taken = planned[original_id]
                delivery = replace(
                    delivery, recipients=[author, *(r for r in readers if r not in taken)]
                )
            planned[original_id].update(delivery.recipients)
            deliveries.append(delivery)
    return deliveries


async def _still_unseen(session: AsyncSession, delivery: Delivery) -> Delivery:
    """``delivery`` without the readers whose feed got its original (or another reblog of
    it) since it was planned: batches are planned outside the write transaction, two at a
    time, so an original and its reblog may be planned side by side. Read in the write
    transaction, which on SQLite holds the write lock. The author keeps their own row."""
    if delivery.reblog_of_id is None or len(delivery.recipients) < 2:
        return delivery
    holding = await feeds_holding(session, delivery.reblog_of_id)
    holding.discard(delivery.author_id)
    if not holding:
        return delivery
    return replace(delivery, recipients=[r for r in delivery.recipients if r not in holding])


async def write_deliveries(session: AsyncSession, deliveries: list[Delivery]) -> None:
    """Home-feed rows of every delivery in one INSERT, and an ``update`` event for the readers
    whose row was actually inserted (one row per status for all of them); the events of all
    the deliveries in one INSERT too. The author's own row carries the public and list
    streams, so they are published exactly once even when a job runs again."""
    deliveries = [await _still_unseen(session, delivery) for delivery in deliveries]
    rows = [(account, d.status_id) for d in deliveries for account in d.recipients]
    added = set(await add_feed_entries(session, rows))
    events: list[EventRow] = []
    for delivery in deliveries:
        status_id = delivery.status_id
        payload = {"status_id": status_id}
        readers = [account for account in delivery.recipients if (account, status_id) in added]
        # The readers' user streams in one event row, the shared streams in a row each.
        events.append(accounts_row(readers, "update", payload))
        if (delivery.author_id, status_id) in added:
            events += [(channel, "update", payload) for channel in delivery.stream_channels]
    await publish_rows(session, events)


@batch_handler(FANOUT)
async def plan_fanout_batch(state: AppState, payloads: list[dict[str, Any]]) -> Writes:
    deliveries = await plan_fanouts(state, [int(payload["status_id"]) for payload in payloads])

    async def write(session: AsyncSession) -> None:
        await write_deliveries(session, deliveries)

    return write


@handler(FANOUT)
async def run_fanout(state: AppState, payload: dict[str, Any]) -> None:
    deliveries = await plan_fanouts(state, [int(payload["status_id"])])
    if deliveries:
        async with state.db.write() as session:
            await write_deliveries(session, deliveries)


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
