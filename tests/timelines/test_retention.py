"""Home feeds keep recent rows only; older pages are read from the statuses themselves."""

from __future__ import annotations

from fastapi import FastAPI
from sqlalchemy import func, select

from tests.conftest import Person
from tests.timelines.conftest import Post, Relate, ids
from townsquare.state import AppState, state_of
from townsquare.timelines.models import HomeFeedEntry
from townsquare.timelines.retention import HOME_FEED_DAYS, trim_home_feeds


async def _feed_rows(state: AppState, person: Person) -> int:
    async with state.db.read() as session:
        count = await session.scalar(
            select(func.count())
            .select_from(HomeFeedEntry)
            .where(HomeFeedEntry.account_id == person.account.id)
        )
    return count or 0


async def test_old_rows_are_trimmed_and_old_pages_still_read(
    app: FastAPI, alice: Person, bob: Person, carol: Person, post: Post, follow: Relate
) -> None:
    state = state_of(app)
    await follow(bob, alice)
    old_days = HOME_FEED_DAYS + 5
    ancient = await post(alice, "ancient", days_ago=old_days + 1)
    old = await post(alice, "old", days_ago=old_days)
    old_private = await post(alice, "old and private", visibility="private", days_ago=old_days)
    old_own = await post(bob, "my old one", days_ago=old_days)
    await post(carol, "a stranger, long ago", days_ago=old_days)
    await post(alice, "psst", visibility="direct", mentions=[bob], days_ago=old_days)
    recent = await post(alice, "recent")
    assert await _feed_rows(state, bob) == 5

    await trim_home_feeds(state)
    assert await _feed_rows(state, bob) == 1

    async def home(**params: str | int) -> list[int]:
        return ids(await bob.client.get("/api/v1/timelines/home", params=params))

    assert await home() == [recent, old_own, old_private, old, ancient]
    assert await home(limit=2) == [recent, old_own]
    assert await home(max_id=recent, limit=2) == [old_own, old_private]
    assert await home(min_id=ancient, limit=2) == [old_private, old]
    assert await home(since_id=old_own) == [recent]

    response = await bob.client.post(f"/api/v1/accounts/{alice.id}/unfollow")
    assert response.status_code == 200, response.text
    assert await home() == [old_own]
