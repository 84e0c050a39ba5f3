from __future__ import annotations

import httpx
from fastapi import FastAPI

from tests.conftest import Person, PersonFactory
from townsquare.accounts.models import Account
from townsquare.db.base import utcnow
from townsquare.state import state_of


async def test_get_account(client: httpx.AsyncClient, alice: Person) -> None:
    response = await client.get(f"/api/v1/accounts/{alice.id}")
    assert response.status_code == 200
    assert response.json()["username"] == "alice"
    for bad in ("999999999", "abc", "-1", "99999999999999999999999"):
        missing = await client.get(f"/api/v1/accounts/{bad}")
        assert missing.status_code == 404, bad
        assert missing.json() == {"error": "Record not found"}


async def test_suspended_account_renders_empty(
    client: httpx.AsyncClient, app: FastAPI, alice: Person
) -> None:
    await alice.client.patch("/api/v1/accounts/update_credentials", data={"note": "hello"})
    async with state_of(app).db.write() as session:
        account = await session.get(Account, alice.account.id)
        assert account is not None
        account.suspended_at = utcnow()
    body = (await client.get(f"/api/v1/accounts/{alice.id}")).json()
    assert body["suspended"] is True
    assert body["note"] == ""


async def test_lookup(client: httpx.AsyncClient, alice: Person) -> None:
    for acct in ("alice", "@alice", "Alice", "alice@testserver"):
        response = await client.get("/api/v1/accounts/lookup", params={"acct": acct})
        assert response.status_code == 200, acct
        assert response.json()["id"] == alice.id
    for acct in ("alice@elsewhere.example", "nobody"):
        response = await client.get("/api/v1/accounts/lookup", params={"acct": acct})
        assert response.status_code == 404
    assert (await client.get("/api/v1/accounts/lookup")).status_code == 422


async def test_many_accounts(client: httpx.AsyncClient, alice: Person, bob: Person) -> None:
    response = await client.get(
        "/api/v1/accounts", params=[("id[]", bob.id), ("id[]", alice.id), ("id[]", "nope")]
    )
    assert response.status_code == 200
    assert [a["username"] for a in response.json()] == ["bob", "alice"]


async def test_search_by_prefix(make_person: PersonFactory) -> None:
    viewer = await make_person("viewer")
    await make_person("annabel")
    await make_person("anna")
    await make_person("bob_ann")
    await viewer.client.patch("/api/v1/accounts/update_credentials", data={"display_name": "V"})
    response = await viewer.client.get("/api/v1/accounts/search", params={"q": "anna"})
    assert response.status_code == 200
    assert [a["username"] for a in response.json()] == ["anna", "annabel"]
    limited = await viewer.client.get("/api/v1/accounts/search", params={"q": "ann", "limit": 1})
    assert len(limited.json()) == 1
    wildcard = await viewer.client.get("/api/v1/accounts/search", params={"q": "%"})
    assert wildcard.json() == []
    anonymous = await httpx.AsyncClient(
        transport=viewer.client._transport, base_url="http://testserver"
    ).get("/api/v1/accounts/search", params={"q": "anna"})
    assert anonymous.status_code == 401


async def test_search_following_only_and_hides_blocked(make_person: PersonFactory) -> None:
    viewer = await make_person("viewer")
    followed = await make_person("sam")
    await make_person("sammy")
    blocker = await make_person("samuel")
    follow = await viewer.client.post(f"/api/v1/accounts/{followed.id}/follow")
    assert follow.status_code == 200
    await blocker.client.post(f"/api/v1/accounts/{viewer.id}/block")
    everyone = await viewer.client.get("/api/v1/accounts/search", params={"q": "sam"})
    assert [a["username"] for a in everyone.json()] == ["sam", "sammy"]
    mine = await viewer.client.get(
        "/api/v1/accounts/search", params={"q": "sam", "following": "true"}
    )
    assert [a["username"] for a in mine.json()] == ["sam"]
