"""Building statuses and follows straight in the database, so timelines are tested on their own.

Statuses are fanned out through the real job queue (``run_pending_jobs``), as the status routes
do; the timelines are then read through the HTTP API.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import pytest
from fastapi import FastAPI
from sqlalchemy import select, update

from tests.conftest import Person
from townsquare.accounts.models import Account
from townsquare.graph.models import Block, Follow, Mute
from townsquare.ids import id_at, new_id
from townsquare.jobs.runner import run_pending_jobs
from townsquare.state import state_of
from townsquare.statuses.models import Mention, Status, StatusTag, Tag
from townsquare.timelines.fanout import enqueue_fanout

Post = Callable[..., Awaitable[int]]
Relate = Callable[..., Awaitable[None]]


@pytest.fixture
def post(app: FastAPI) -> Post:
    """``await post(person, "text", visibility=..., tags=[...])`` → the new status id."""
    state = state_of(app)
    sequence = itertools.count()

    async def create(
        author: Person,
        text: str = "hello",
        *,
        visibility: str = "public",
        in_reply_to: int | None = None,
        reblog_of: int | None = None,
        tags: Sequence[str] = (),
        mentions: Sequence[Person] = (),
        fan_out: bool = True,
        days_ago: float = 0,
    ) -> int:
        async with state.db.write() as session:
            reply_account = None
            if in_reply_to is not None:
                reply_account = await session.scalar(
                    select(Status.account_id).where(Status.id == in_reply_to)
                )
            status_id = new_id()
            if days_ago:
                # new_id never goes back in time; an old id is built by hand.
                status_id = id_at(int((time.time() - days_ago * 86400) * 1000)) + next(sequence)
            status = Status(
                id=status_id,
                account_id=author.account.id,
                text=text,
                content_html=f"<p>{text}</p>",
                visibility=visibility,
                in_reply_to_id=in_reply_to,
                in_reply_to_account_id=reply_account,
                reblog_of_id=reblog_of,
            )
            session.add(status)
            await session.flush()
            for name in tags:
                tag = await session.scalar(select(Tag).where(Tag.name_key == name.lower()))
                if tag is None:
                    tag = Tag(id=new_id(), name=name, name_key=name.lower())
                    session.add(tag)
                    await session.flush()
                session.add(StatusTag(tag_id=tag.id, status_id=status.id))
            for person in mentions:
                session.add(Mention(status_id=status.id, account_id=person.account.id))
            if fan_out:
                enqueue_fanout(session, status)
        if fan_out:
            await run_pending_jobs(state)
        return status.id

    return create


@pytest.fixture
def follow(app: FastAPI) -> Relate:
    """``await follow(a, b)``: a follows b (and b's follower count goes up)."""
    state = state_of(app)

    async def create(follower: Person, target: Person, *, show_reblogs: bool = True) -> None:
        async with state.db.write() as session:
            session.add(
                Follow(
                    id=new_id(),
                    account_id=follower.account.id,
                    target_account_id=target.account.id,
                    show_reblogs=show_reblogs,
                )
            )
            await _bump_followers(session, target.account.id, 1)

    return create


@pytest.fixture
def block(app: FastAPI) -> Relate:
    state = state_of(app)

    async def create(blocker: Person, target: Person) -> None:
        async with state.db.write() as session:
            session.add(
                Block(
                    id=new_id(), account_id=blocker.account.id, target_account_id=target.account.id
                )
            )

    return create


@pytest.fixture
def mute(app: FastAPI) -> Relate:
    state = state_of(app)

    async def create(muter: Person, target: Person) -> None:
        async with state.db.write() as session:
            session.add(
                Mute(id=new_id(), account_id=muter.account.id, target_account_id=target.account.id)
            )

    return create


async def _bump_followers(session: Any, account_id: int, by: int) -> None:
    await session.execute(
        update(Account)
        .where(Account.id == account_id)
        .values(followers_count=Account.followers_count + by)
    )


def ids(response: Any) -> list[int]:
    assert response.status_code == 200, response.text
    return [int(item["id"]) for item in response.json()]
