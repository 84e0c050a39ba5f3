"""Hot anonymous reads are answered from a short-lived cache; nothing personal is ever kept."""

from __future__ import annotations

import asyncio

from fastapi import FastAPI

from tests.conftest import Person
from tests.shield.conftest import AppFactory, client_from, shield_of, under_attack

PUBLIC_TIMELINE = "/api/v1/timelines/public?local=true"


async def _post(person: Person, text: str, visibility: str = "public") -> str:
    response = await person.client.post(
        "/api/v1/statuses", json={"status": text, "visibility": visibility}
    )
    assert response.status_code == 200, response.text
    status_id: str = response.json()["id"]
    return status_id


async def test_identical_anonymous_reads_are_served_from_the_cache(
    app: FastAPI, alice: Person
) -> None:
    await _post(alice, "first")
    anonymous = client_from(app, "203.0.113.5")
    first = await anonymous.get(PUBLIC_TIMELINE)
    assert [s["content"] for s in first.json()] == ["<p>first</p>"]

    await _post(alice, "second")
    # Within the cache's lifetime anonymous readers get the same answer, cheaply...
    again = await client_from(app, "203.0.113.77").get(PUBLIC_TIMELINE)
    assert again.json() == first.json()
    assert again.headers["access-control-allow-origin"] == "*"
    # ...without another client's rate-limit count in it.
    assert "x-ratelimit-remaining" not in again.headers
    # A logged-in reader always gets a fresh answer, and so does another query.
    fresh = await alice.client.get(PUBLIC_TIMELINE)
    assert [s["content"] for s in fresh.json()] == ["<p>second</p>", "<p>first</p>"]
    other = await anonymous.get(PUBLIC_TIMELINE + "&limit=5")
    assert len(other.json()) == 2
    assert shield_of(app).cache is not None
    assert shield_of(app).cache.hits == 1  # type: ignore[union-attr]


async def test_the_cache_forgets_after_its_lifetime(shielded: AppFactory, alice: Person) -> None:
    app = await shielded(shield_cache_ttl=0.2)
    anonymous = client_from(app)
    assert (await anonymous.get(PUBLIC_TIMELINE)).json() == []
    await _post(alice, "hello")
    await asyncio.sleep(0.3)
    assert len((await anonymous.get(PUBLIC_TIMELINE)).json()) == 1


async def test_personal_answers_are_never_stored(app: FastAPI, alice: Person, bob: Person) -> None:
    secret = await _post(alice, "for followers only", visibility="private")
    path = f"/api/v1/statuses/{secret}"
    # Alice sees her private post; that answer must not reach anyone anonymous.
    assert (await alice.client.get(path)).status_code == 200
    assert (await client_from(app).get(path)).status_code == 404
    # A session cookie counts as being logged in: its reader is never served from the cache.
    cookie = client_from(app, headers={"Cookie": f"townsquare_session={bob.token}"})
    await cookie.get(PUBLIC_TIMELINE)
    await client_from(app, headers={"Cookie": "townsquare_session=x"}).get(PUBLIC_TIMELINE)
    assert shield_of(app).cache is not None
    assert len(shield_of(app).cache) == 0  # type: ignore[arg-type]


async def test_a_burst_of_identical_misses_reaches_the_app_once(
    app: FastAPI, alice: Person
) -> None:
    status_id = await _post(alice, "viral")
    cache = shield_of(app).cache
    assert cache is not None
    clients = [client_from(app, f"198.51.100.{n}") for n in range(30)]
    answers = await asyncio.gather(*(c.get(f"/api/v1/statuses/{status_id}") for c in clients))
    assert {a.status_code for a in answers} == {200}
    assert cache.misses <= 2  # the first one (and at most one more racing it)
    assert cache.hits >= 28


async def test_cached_public_pages_stay_readable_under_attack(app: FastAPI, alice: Person) -> None:
    status_id = await _post(alice, "read me")
    path = f"/api/v1/statuses/{status_id}"
    # Someone with a pass (or a logged-out browser that solved one) warmed the cache.
    assert (await client_from(app).get(path)).status_code == 200
    under_attack(app)
    assert (await client_from(app, "192.0.2.9").get(path)).status_code == 200
    # What is not in the cache still needs a pass.
    assert (await client_from(app, "192.0.2.9").get(path + "/context")).status_code == 429
