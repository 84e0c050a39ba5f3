"""A follow brings the followee's statuses into the home timeline; unfollow and block take them
out again."""

from __future__ import annotations

from fastapi import FastAPI

from tests.conftest import Person
from townsquare.jobs.runner import run_pending_jobs
from townsquare.state import state_of


async def home_ids(app: FastAPI, person: Person) -> list[str]:
    await run_pending_jobs(state_of(app))
    response = await person.client.get("/api/v1/timelines/home")
    assert response.status_code == 200
    return [status["id"] for status in response.json()]


async def post(person: Person, text: str) -> str:
    response = await person.client.post("/api/v1/statuses", json={"status": text})
    assert response.status_code == 200, response.text
    status_id = response.json()["id"]
    assert isinstance(status_id, str)
    return status_id


async def test_follow_backfills_and_unfollow_removes(
    app: FastAPI, alice: Person, bob: Person
) -> None:
    earlier = await post(bob, "before the follow")
    await alice.client.post(f"/api/v1/accounts/{bob.id}/follow")
    assert earlier in await home_ids(app, alice)

    later = await post(bob, "after the follow")
    assert later in await home_ids(app, alice)

    await alice.client.post(f"/api/v1/accounts/{bob.id}/unfollow")
    remaining = await home_ids(app, alice)
    assert earlier not in remaining
    assert later not in remaining


async def test_block_removes_statuses_from_both_home_timelines(
    app: FastAPI, alice: Person, bob: Person
) -> None:
    await alice.client.post(f"/api/v1/accounts/{bob.id}/follow")
    await bob.client.post(f"/api/v1/accounts/{alice.id}/follow")
    from_bob = await post(bob, "hello followers")
    from_alice = await post(alice, "hello to you too")
    assert from_bob in await home_ids(app, alice)
    assert from_alice in await home_ids(app, bob)

    await alice.client.post(f"/api/v1/accounts/{bob.id}/block")
    assert from_bob not in await home_ids(app, alice)
    assert from_alice not in await home_ids(app, bob)
