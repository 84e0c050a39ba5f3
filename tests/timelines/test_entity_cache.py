"""Rendered entities cached across requests never outlive the rows they were made from.

Changes go through one app (a worker) while the reader's home timeline is read through a second
app on the same database: another worker, with a cache of its own that nothing tells about the
change. It must show the change on its very next request.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI

from tests.conftest import Person
from tests.timelines.conftest import Relate
from townsquare.app import create_app
from townsquare.config import Settings
from townsquare.jobs.runner import run_pending_jobs
from townsquare.state import state_of
from townsquare.statuses.cache import EntityCache, VersionedCache, entity_cache


@pytest.fixture
async def other_worker(settings: Settings) -> AsyncIterator[FastAPI]:
    application = create_app(settings, migrate=False)
    async with LifespanManager(application, startup_timeout=60, shutdown_timeout=60):
        yield application


async def _home_on(worker: FastAPI, reader: Person) -> list[dict[str, Any]]:
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=worker),
        base_url="http://testserver",
        headers=reader.headers,
    ) as client:
        response = await client.get("/api/v1/timelines/home")
    assert response.status_code == 200, response.text
    body: list[dict[str, Any]] = response.json()
    return body


async def _post(app: FastAPI, author: Person, **params: Any) -> dict[str, Any]:
    response = await author.client.post("/api/v1/statuses", json=params)
    assert response.status_code == 200, response.text
    await run_pending_jobs(state_of(app))
    body: dict[str, Any] = response.json()
    return body


async def _read_twice(worker: FastAPI, reader: Person) -> list[dict[str, Any]]:
    """The reader's timeline, read twice so the second answer comes from the cache."""
    cache = entity_cache(state_of(worker))
    await _home_on(worker, reader)
    hits = cache.templates.hits
    body = await _home_on(worker, reader)
    assert cache.templates.hits > hits, "the second read should be served from the cache"
    return body


async def test_an_edit_shows_at_once_on_another_worker(
    app: FastAPI, other_worker: FastAPI, alice: Person, bob: Person, follow: Relate
) -> None:
    await follow(bob, alice)
    status = await _post(app, alice, status="first words #before")
    [seen] = await _read_twice(other_worker, bob)
    assert seen["content"] == status["content"]
    assert [tag["name"] for tag in seen["tags"]] == ["before"]

    edited = await alice.client.put(
        f"/api/v1/statuses/{status['id']}", json={"status": "second words #after"}
    )
    assert edited.status_code == 200, edited.text

    [seen] = await _home_on(other_worker, bob)
    assert "second words" in seen["content"]
    assert seen["edited_at"] is not None
    assert [tag["name"] for tag in seen["tags"]] == ["after"]


async def test_a_deleted_status_and_its_reblogs_go_at_once(
    app: FastAPI, other_worker: FastAPI, alice: Person, bob: Person, carol: Person, follow: Relate
) -> None:
    await follow(bob, carol)
    status = await _post(app, alice, status="soon gone")
    own = await _post(app, carol, status="also soon gone")
    reblogged = await carol.client.post(f"/api/v1/statuses/{status['id']}/reblog")
    assert reblogged.status_code == 200, reblogged.text
    await run_pending_jobs(state_of(app))
    seen = await _read_twice(other_worker, bob)
    assert [s["reblog"]["id"] if s["reblog"] else s["id"] for s in seen] == [
        status["id"],
        own["id"],
    ]

    deleted = await alice.client.delete(f"/api/v1/statuses/{status['id']}")
    assert deleted.status_code == 200, deleted.text

    assert [s["id"] for s in await _home_on(other_worker, bob)] == [own["id"]]
    deleted = await carol.client.delete(f"/api/v1/statuses/{own['id']}")
    assert deleted.status_code == 200, deleted.text
    assert await _home_on(other_worker, bob) == []


async def test_counters_and_the_readers_own_marks_are_fresh(
    app: FastAPI, other_worker: FastAPI, alice: Person, bob: Person, carol: Person, follow: Relate
) -> None:
    await follow(bob, alice)
    status = await _post(app, alice, status="count me")
    [seen] = await _read_twice(other_worker, bob)
    assert (seen["favourites_count"], seen["favourited"], seen["bookmarked"]) == (0, False, False)

    await carol.client.post(f"/api/v1/statuses/{status['id']}/favourite")
    await bob.client.post(f"/api/v1/statuses/{status['id']}/favourite")
    await bob.client.post(f"/api/v1/statuses/{status['id']}/bookmark")
    await carol.client.post(f"/api/v1/statuses/{status['id']}/reblog")
    await run_pending_jobs(state_of(app))

    [seen] = [s for s in await _home_on(other_worker, bob) if s["reblog"] is None]
    assert seen["favourites_count"] == 2
    assert seen["reblogs_count"] == 1
    assert (seen["favourited"], seen["bookmarked"]) == (True, True)

    await bob.client.post(f"/api/v1/statuses/{status['id']}/unfavourite")
    [seen] = await _home_on(other_worker, bob)
    assert (seen["favourites_count"], seen["favourited"]) == (1, False)


async def test_a_profile_change_shows_at_once_on_another_worker(
    app: FastAPI, other_worker: FastAPI, alice: Person, bob: Person, carol: Person, follow: Relate
) -> None:
    await follow(bob, alice)
    await _post(app, alice, status="who am I")
    [seen] = await _read_twice(other_worker, bob)
    assert seen["account"]["display_name"] == ""
    followers = seen["account"]["followers_count"]

    updated = await alice.client.patch(
        "/api/v1/accounts/update_credentials", data={"display_name": "Alice A.", "locked": "true"}
    )
    assert updated.status_code == 200, updated.text
    await follow(carol, alice)

    [seen] = await _home_on(other_worker, bob)
    assert seen["account"]["display_name"] == "Alice A."
    assert seen["account"]["locked"] is True
    assert seen["account"]["followers_count"] == followers + 1


async def test_poll_results_and_own_votes_are_fresh(
    app: FastAPI, other_worker: FastAPI, alice: Person, bob: Person, carol: Person, follow: Relate
) -> None:
    await follow(bob, alice)
    status = await _post(
        app, alice, status="Tea or coffee?", poll={"options": ["tea", "coffee"], "expires_in": 3600}
    )
    poll_id = status["poll"]["id"]
    [seen] = await _read_twice(other_worker, bob)
    assert seen["poll"]["votes_count"] == 0

    await carol.client.post(f"/api/v1/polls/{poll_id}/votes", json={"choices": [1]})
    [seen] = await _home_on(other_worker, bob)
    assert seen["poll"]["votes_count"] == 1
    assert seen["poll"]["voted"] is False

    await bob.client.post(f"/api/v1/polls/{poll_id}/votes", json={"choices": [0]})
    [seen] = await _home_on(other_worker, bob)
    assert seen["poll"]["votes_count"] == 2
    assert (seen["poll"]["voted"], seen["poll"]["own_votes"]) == (True, [0])


async def test_a_block_hides_cached_statuses_at_once(
    app: FastAPI, other_worker: FastAPI, alice: Person, bob: Person, follow: Relate
) -> None:
    await follow(bob, alice)
    await _post(app, alice, status="cached, then blocked")
    assert len(await _read_twice(other_worker, bob)) == 1

    blocked = await alice.client.post(f"/api/v1/accounts/{bob.id}/block")
    assert blocked.status_code == 200, blocked.text

    assert await _home_on(other_worker, bob) == []


def test_the_cache_is_bounded_and_checks_versions() -> None:
    cache: VersionedCache[str] = VersionedCache(2)
    cache.put(1, "v1", "one")
    cache.put(2, "v1", "two")
    assert cache.get(1, "v1") == "one"
    assert cache.get(1, "v2") is None
    cache.put(3, "v1", "three")  # 2 was used least recently
    assert len(cache) == 2
    assert cache.get(2, "v1") is None
    assert cache.get(1, "v1") == "one"

    expired: VersionedCache[str] = VersionedCache(2, max_age=-1.0)
    expired.put(1, "v1", "one")
    assert expired.get(1, "v1") is None

    off = EntityCache(0)
    off.statuses.put(1, "v1", "one")
    assert off.statuses.get(1, "v1") is None
