"""Fan-out on write: which home feeds and streams a status reaches; re-runs are invisible."""

from __future__ import annotations

import datetime as dt
from collections import Counter

import orjson
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select, update

from tests.conftest import Person
from tests.timelines.conftest import Post, Relate
from townsquare.db.base import utcnow
from townsquare.jobs.lease import lease_jobs, lease_next_job
from townsquare.jobs.models import Job
from townsquare.jobs.runner import run_next_jobs, run_pending_jobs
from townsquare.state import AppState, state_of
from townsquare.statuses.models import Status
from townsquare.streaming.bus import ChannelEvent
from townsquare.streaming.models import StreamEvent
from townsquare.streaming.publish import ACCOUNTS_CHANNEL, addressed_channels
from townsquare.streaming.tailer import EventTailer
from townsquare.timelines.fanout import (
    enqueue_backfill,
    enqueue_fanout,
    plan_fanout_batch,
    run_fanout,
)
from townsquare.timelines.models import HomeFeedEntry


async def feed_of(state: AppState, person: Person) -> set[int]:
    async with state.db.read() as session:
        rows = await session.scalars(
            select(HomeFeedEntry.status_id).where(HomeFeedEntry.account_id == person.account.id)
        )
        return set(rows.all())


async def updates(state: AppState) -> Counter[str]:
    """``update`` events by the channel their subscribers get them on."""
    async with state.db.read() as session:
        rows = await session.execute(
            select(StreamEvent.channel, StreamEvent.payload).where(StreamEvent.event == "update")
        )
        return Counter(
            channel
            for row_channel, payload in rows
            for channel, _payload in addressed_channels(row_channel, orjson.loads(payload))
        )


async def test_followers_receive_public_and_private_statuses(
    app: FastAPI, alice: Person, bob: Person, carol: Person, post: Post, follow: Relate
) -> None:
    state = state_of(app)
    await follow(bob, alice)
    public = await post(alice, "hello world")
    private = await post(alice, "followers only", visibility="private")
    direct = await post(alice, "psst", visibility="direct", mentions=[bob])

    assert await feed_of(state, bob) == {public, private}
    assert await feed_of(state, alice) == {public, private}
    assert direct not in await feed_of(state, bob)
    assert await feed_of(state, carol) == set()


async def test_running_a_fanout_twice_changes_nothing(
    app: FastAPI, alice: Person, bob: Person, carol: Person, post: Post, follow: Relate
) -> None:
    state = state_of(app)
    await follow(bob, alice)
    await follow(carol, alice)
    status_id = await post(alice, "once", tags=["Once"])
    before = await updates(state)

    await run_fanout(state, {"status_id": status_id})
    await run_fanout(state, {"status_id": status_id})

    async with state.db.read() as session:
        rows = (
            await session.scalars(
                select(HomeFeedEntry.account_id).where(HomeFeedEntry.status_id == status_id)
            )
        ).all()
    assert Counter(rows) == {alice.account.id: 1, bob.account.id: 1, carol.account.id: 1}
    after = await updates(state)
    assert after == before
    for person in (alice, bob, carol):
        assert after[f"user:{person.account.id}"] == 1
    assert after["public"] == after["public:local"] == after["hashtag:once"] == 1


async def test_private_statuses_are_not_published_on_public_streams(
    app: FastAPI, alice: Person, post: Post
) -> None:
    state = state_of(app)
    await post(alice, "secret", visibility="private", tags=["secret"])
    await post(alice, "quiet", visibility="unlisted", tags=["quiet"])
    channels = await updates(state)
    assert channels["public"] == 0
    assert channels["hashtag:secret"] == channels["hashtag:quiet"] == 0
    assert channels[f"user:{alice.account.id}"] == 2


async def test_followers_who_muted_or_blocked_the_author_get_nothing(
    app: FastAPI,
    alice: Person,
    bob: Person,
    carol: Person,
    post: Post,
    follow: Relate,
    mute: Relate,
    block: Relate,
) -> None:
    state = state_of(app)
    await follow(bob, alice)
    await follow(carol, alice)
    await mute(bob, alice)
    await block(carol, alice)
    await post(alice, "anyone there?")
    assert await feed_of(state, bob) == set()
    assert await feed_of(state, carol) == set()


async def test_replies_reach_only_those_who_follow_both(
    app: FastAPI,
    alice: Person,
    bob: Person,
    carol: Person,
    post: Post,
    follow: Relate,
) -> None:
    state = state_of(app)
    await follow(bob, alice)
    await follow(carol, alice)
    await follow(carol, bob)
    question = await post(bob, "question")
    answer = await post(alice, "answer", in_reply_to=question)
    assert answer in await feed_of(state, carol)
    assert answer in await feed_of(state, bob)


async def test_replies_to_strangers_stay_out_of_home_feeds(
    app: FastAPI, alice: Person, bob: Person, carol: Person, post: Post, follow: Relate
) -> None:
    state = state_of(app)
    await follow(bob, alice)
    stranger_post = await post(carol, "hi all")
    reply = await post(alice, "hi carol", in_reply_to=stranger_post)
    assert reply not in await feed_of(state, bob)
    assert reply in await feed_of(state, alice)


async def test_reblogs_respect_show_reblogs_and_skip_what_is_already_there(
    app: FastAPI,
    alice: Person,
    bob: Person,
    carol: Person,
    post: Post,
    follow: Relate,
) -> None:
    state = state_of(app)
    await follow(bob, alice)
    await follow(bob, carol)
    await follow(carol, alice, show_reblogs=False)
    await follow(alice, carol)
    original = await post(alice, "worth sharing")
    reblog = await post(carol, "", reblog_of=original)
    # bob already has the original from alice.
    assert reblog not in await feed_of(state, bob)
    assert reblog not in await feed_of(state, alice)  # her own status, boosted back

    other = await post(carol, "carol's own")
    shared_back = await post(alice, "", reblog_of=other)
    assert shared_back not in await feed_of(state, carol)  # carol hides alice's reblogs
    assert shared_back not in await feed_of(state, bob)  # bob has carol's original


async def test_a_big_author_is_not_fanned_out(
    app: FastAPI, alice: Person, bob: Person, post: Post, follow: Relate
) -> None:
    state = state_of(app)
    state.settings.fanout_pull_threshold = 1
    await follow(bob, alice)
    status_id = await post(alice, "to my many fans")
    assert await feed_of(state, bob) == set()
    assert await feed_of(state, alice) == {status_id}
    channels = await updates(state)
    assert channels[f"followers:{alice.account.id}"] == 1
    assert channels[f"user:{bob.account.id}"] == 0


async def test_a_new_follow_backfills_recent_statuses(
    app: FastAPI, alice: Person, bob: Person, post: Post, follow: Relate
) -> None:
    state = state_of(app)
    older = [await post(alice, f"post {n}") for n in range(3)]
    hidden = await post(alice, "psst", visibility="direct", mentions=[bob])
    private = await post(alice, "friends", visibility="private")
    await follow(bob, alice)
    async with state.db.write() as session:
        enqueue_backfill(session, bob.account.id, alice.account.id)
    await run_pending_jobs(state)
    feed = await feed_of(state, bob)
    assert feed == {*older, private}
    assert hidden not in feed


async def test_a_fanout_whose_runner_died_after_the_work_is_redone_invisibly(
    app: FastAPI, alice: Person, bob: Person, post: Post, follow: Relate
) -> None:
    state = state_of(app)
    await follow(bob, alice)
    # Stop the app's own runners from taking the job, then play a runner that does the work
    # but dies before it can record that the job is done.
    await state.extras["job_runners"].stop()
    status_id = await post(alice, "crash test", fan_out=False)
    async with state.db.write() as session:
        status = await session.get(Status, status_id)
        assert status is not None
        enqueue_fanout(session, status)
    async with state.db.write() as session:
        lease = await lease_next_job(session, duration=dt.timedelta(seconds=60))
    assert lease is not None and lease.kind == "fanout"
    await run_fanout(state, lease.payload)
    async with state.db.write() as session:
        await session.execute(
            update(Job)
            .where(Job.id == lease.job_id)
            .values(locked_until=utcnow() - dt.timedelta(seconds=1))
        )

    assert await run_pending_jobs(state) == 1
    async with state.db.read() as session:
        job = await session.get(Job, lease.job_id)
        assert job is not None and job.state == "done"
        rows = (
            await session.scalars(
                select(HomeFeedEntry.account_id).where(HomeFeedEntry.status_id == status_id)
            )
        ).all()
    assert Counter(rows) == {alice.account.id: 1, bob.account.id: 1}
    channels = await updates(state)
    assert channels[f"user:{bob.account.id}"] == 1
    assert channels["public"] == 1


async def test_fanouts_leased_together_are_delivered_in_one_batch(
    app: FastAPI, alice: Person, bob: Person, carol: Person, post: Post, follow: Relate
) -> None:
    state = state_of(app)
    await state.extras["job_runners"].stop()
    await follow(bob, alice)
    await follow(carol, alice)
    await follow(alice, carol)
    first = await post(alice, "one", tags=["Batch"], fan_out=False)
    second = await post(alice, "two", visibility="private", fan_out=False)
    third = await post(carol, "three", fan_out=False)
    direct = await post(alice, "psst", visibility="direct", mentions=[bob], fan_out=False)
    async with state.db.write() as session:
        for status_id in (first, second, third, direct, first):
            status = await session.get(Status, status_id)
            assert status is not None
            enqueue_fanout(session, status)

    assert await run_next_jobs(state, limit=10) == 5

    assert await feed_of(state, alice) == {first, second, third}
    assert await feed_of(state, bob) == {first, second}
    assert await feed_of(state, carol) == {first, second, third}
    channels = await updates(state)
    assert channels[f"user:{alice.account.id}"] == 3
    assert channels[f"user:{bob.account.id}"] == 2
    assert channels["public"] == 2
    assert channels["hashtag:batch"] == 1
    async with state.db.read() as session:
        assert set((await session.scalars(select(Job.state))).all()) == {"done"}

    # Running the same batch again has no visible effect.
    writes = await plan_fanout_batch(
        state, [{"status_id": status_id} for status_id in (first, second, third)]
    )
    async with state.db.write() as session:
        await writes(session)
    assert await updates(state) == channels


async def test_a_reblog_fanned_out_with_its_original_skips_the_feeds_the_original_reaches(
    app: FastAPI, alice: Person, bob: Person, carol: Person, post: Post, follow: Relate
) -> None:
    state = state_of(app)
    await state.extras["job_runners"].stop()
    await follow(bob, alice)
    await follow(bob, carol)
    original = await post(alice, "worth sharing", fan_out=False)
    reblog = await post(carol, "", reblog_of=original, fan_out=False)
    again = await post(alice, "", reblog_of=original, fan_out=False)
    async with state.db.write() as session:
        for status_id in (original, reblog, again):
            status = await session.get(Status, status_id)
            assert status is not None
            enqueue_fanout(session, status)

    assert await run_next_jobs(state, limit=10) == 3

    # bob follows both: the original once, not carol's reblog of it as well.
    assert await feed_of(state, bob) == {original}
    assert reblog in await feed_of(state, carol)


async def test_a_fanout_batch_whose_runner_died_mid_write_is_delivered_once(
    app: FastAPI, alice: Person, bob: Person, post: Post, follow: Relate
) -> None:
    state = state_of(app)
    await state.extras["job_runners"].stop()
    await follow(bob, alice)
    statuses = [await post(alice, f"post {n}", fan_out=False) for n in range(3)]
    async with state.db.write() as session:
        for status_id in statuses:
            status = await session.get(Status, status_id)
            assert status is not None
            enqueue_fanout(session, status)
    async with state.db.write() as session:
        leases = await lease_jobs(session, duration=dt.timedelta(seconds=60), limit=10)
    writes = await plan_fanout_batch(state, [lease.payload for lease in leases])
    with pytest.raises(RuntimeError):
        async with state.db.write() as session:
            await writes(session)
            raise RuntimeError("the process was killed before the commit")
    assert await feed_of(state, bob) == set()

    async with state.db.write() as session:
        await session.execute(update(Job).values(locked_until=utcnow() - dt.timedelta(seconds=1)))
    assert await run_pending_jobs(state) == 3
    assert await feed_of(state, bob) == set(statuses)
    channels = await updates(state)
    assert channels[f"user:{bob.account.id}"] == 3
    assert channels["public"] == 3


async def test_one_event_row_reaches_every_reader_stream(
    app: FastAPI, alice: Person, bob: Person, carol: Person, post: Post, follow: Relate
) -> None:
    """A status's readers share one event row; the tailer hands it on as one event on each
    reader's user channel, with the payload a per-reader row had."""
    state = state_of(app)
    await follow(bob, alice)
    await follow(carol, alice)
    seen: list[ChannelEvent] = []

    async def handle(events: list[ChannelEvent]) -> None:
        seen.extend(events)

    tailer = EventTailer(state.db, handle, poll_interval=0.01, retention=60.0)
    async with state.db.read() as session:
        tailer.cursor.high = int(
            (await session.execute(select(func.max(StreamEvent.id)))).scalar() or 0
        )
    status_id = await post(alice, "to everyone")
    async with state.db.read() as session:
        rows = (
            await session.scalars(
                select(StreamEvent.channel).where(
                    StreamEvent.event == "update", StreamEvent.id > tailer.cursor.high
                )
            )
        ).all()
    assert sorted(rows) == sorted([ACCOUNTS_CHANNEL, "public", "public:local"])

    await tailer.handle(await tailer.poll())
    delivered = {(event.channel, event.event, str(event.payload)) for event in seen}
    payload = str({"status_id": status_id})
    assert delivered == {
        (f"user:{person.account.id}", "update", payload) for person in (alice, bob, carol)
    } | {("public", "update", payload), ("public:local", "update", payload)}
