"""Through the API only: post, follow, reblog, and read home and public timelines."""

from __future__ import annotations

from fastapi import FastAPI

from tests.conftest import Person
from tests.timelines.conftest import ids
from townsquare.jobs.runner import run_pending_jobs
from townsquare.state import state_of


async def _post(person: Person, **fields: object) -> int:
    response = await person.client.post("/api/v1/statuses", json=fields)
    assert response.status_code == 200, response.text
    return int(response.json()["id"])


async def test_posts_reach_followers_through_the_api(
    app: FastAPI, alice: Person, bob: Person, carol: Person
) -> None:
    state = state_of(app)
    assert (await bob.client.post(f"/api/v1/accounts/{alice.id}/follow")).status_code == 200
    public = await _post(alice, status="hello #world")
    private = await _post(alice, status="friends only", visibility="private")
    direct = await _post(alice, status="@carol psst", visibility="direct")
    from_carol = await _post(carol, status="carol speaks")
    reblog = await bob.client.post(f"/api/v1/statuses/{from_carol}/reblog")
    assert reblog.status_code == 200, reblog.text
    await run_pending_jobs(state)

    assert ids(await bob.client.get("/api/v1/timelines/home")) == [
        int(reblog.json()["id"]),
        private,
        public,
    ]
    home_of_carol = ids(await carol.client.get("/api/v1/timelines/home"))
    assert direct not in home_of_carol
    assert ids(await carol.client.get("/api/v1/timelines/tag/world")) == [public]
    assert ids(await carol.client.get("/api/v1/timelines/public")) == [from_carol, public]
