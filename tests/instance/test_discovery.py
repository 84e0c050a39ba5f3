"""Trends, the directory and suggestions show public activity and respect blocks."""

from __future__ import annotations

import httpx

from tests.conftest import Person


async def post(person: Person, text: str, visibility: str = "public") -> str:
    response = await person.client.post(
        "/api/v1/statuses", data={"status": text, "visibility": visibility}
    )
    assert response.status_code == 200, response.text
    status_id: str = response.json()["id"]
    return status_id


async def test_trending_tags_count_people_in_public_posts(
    alice: Person, bob: Person, carol: Person, client: httpx.AsyncClient
) -> None:
    await post(alice, "I love #gardening")
    await post(bob, "More #gardening today and #cooking")
    await post(bob, "Still #cooking")
    await post(carol, "secret #hidden", visibility="private")

    response = await client.get("/api/v1/trends/tags")
    assert response.status_code == 200
    tags = response.json()
    assert [tag["name"].lower() for tag in tags] == ["gardening", "cooking"]
    today = tags[0]["history"][0]
    assert today == {"day": today["day"], "uses": "2", "accounts": "2"}
    assert len(tags[0]["history"]) == 7
    assert tags[1]["history"][0]["uses"] == "2" and tags[1]["history"][0]["accounts"] == "1"
    assert "following" not in tags[0]

    logged_in = (await alice.client.get("/api/v1/trends")).json()
    assert logged_in[0]["following"] is False
    assert (await client.get("/api/v1/trends/tags", params={"offset": 1})).json()[0][
        "name"
    ].lower() == "cooking"


async def test_trending_statuses_rank_by_engagement_and_hide_blocked(
    alice: Person, bob: Person, carol: Person
) -> None:
    quiet = await post(alice, "nobody cares")
    loved = await post(alice, "everyone likes this")
    liked_once = await post(bob, "one like")
    await post(alice, "followers only", visibility="private")
    for person in (bob, carol):
        assert (await person.client.post(f"/api/v1/statuses/{loved}/favourite")).status_code == 200
    await carol.client.post(f"/api/v1/statuses/{liked_once}/favourite")

    trending = (await carol.client.get("/api/v1/trends/statuses")).json()
    assert [status["id"] for status in trending] == [loved, liked_once]
    assert quiet not in [status["id"] for status in trending]

    await carol.client.post(f"/api/v1/accounts/{alice.id}/block")
    after_block = (await carol.client.get("/api/v1/trends/statuses")).json()
    assert [status["id"] for status in after_block] == [liked_once]


async def test_directory_and_suggestions(
    alice: Person, bob: Person, carol: Person, client: httpx.AsyncClient
) -> None:
    await post(bob, "active")
    directory = (await client.get("/api/v1/directory", params={"order": "active"})).json()
    assert directory[0]["username"] == "bob"
    newest = (await client.get("/api/v1/directory", params={"order": "new", "limit": 2})).json()
    assert [account["username"] for account in newest] == ["carol", "bob"]
    assert (await client.get("/api/v1/directory", params={"order": "odd"})).status_code == 422

    await alice.client.post(f"/api/v1/accounts/{bob.id}/follow")
    await alice.client.post(f"/api/v1/accounts/{carol.id}/block")
    suggestions = (await alice.client.get("/api/v2/suggestions")).json()
    # Not herself, not someone she follows, not someone she blocked.
    assert suggestions == []
    suggested = (await bob.client.get("/api/v1/suggestions")).json()
    assert {account["username"] for account in suggested} == {"alice", "carol"}
    assert (await client.get("/api/v1/suggestions")).status_code == 401
