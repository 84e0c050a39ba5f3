"""Reblogs, favourites, bookmarks and pins: counters, idempotence and the lists they feed."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import FastAPI
from sqlalchemy import select

from tests.conftest import Person
from townsquare.notifications.models import Notification
from townsquare.state import state_of


async def _post(person: Person, **params: Any) -> dict[str, Any]:
    response = await person.client.post("/api/v1/statuses", json=params)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def _notifications(app: FastAPI, person: Person) -> list[tuple[str, int]]:
    async with state_of(app).db.read() as session:
        rows = await session.execute(
            select(Notification.type, Notification.from_account_id).where(
                Notification.account_id == person.account.id
            )
        )
        return [(kind, sender) for kind, sender in rows]


async def test_favourite_is_counted_once(app: FastAPI, alice: Person, bob: Person) -> None:
    post = await _post(alice, status="like me")
    responses = await asyncio.gather(
        *(bob.client.post(f"/api/v1/statuses/{post['id']}/favourite") for _ in range(3))
    )
    assert all(r.status_code == 200 for r in responses)
    shown = (await bob.client.get(f"/api/v1/statuses/{post['id']}")).json()
    assert shown["favourites_count"] == 1
    assert shown["favourited"] is True
    assert (await alice.client.get(f"/api/v1/statuses/{post['id']}")).json()["favourited"] is False
    assert await _notifications(app, alice) == [("favourite", bob.account.id)]

    by = (await alice.client.get(f"/api/v1/statuses/{post['id']}/favourited_by")).json()
    assert [account["id"] for account in by] == [bob.id]
    favourites = await bob.client.get("/api/v1/favourites")
    assert [s["id"] for s in favourites.json()] == [post["id"]]
    assert 'rel="next"' in favourites.headers["link"]

    for _ in range(2):
        undone = await bob.client.post(f"/api/v1/statuses/{post['id']}/unfavourite")
        assert undone.status_code == 200
        assert undone.json()["favourites_count"] == 0
        assert undone.json()["favourited"] is False
    assert (await bob.client.get("/api/v1/favourites")).json() == []


async def test_reblog_wraps_the_original(app: FastAPI, alice: Person, bob: Person) -> None:
    post = await _post(alice, status="boost me")
    first = await bob.client.post(f"/api/v1/statuses/{post['id']}/reblog")
    second = await bob.client.post(f"/api/v1/statuses/{post['id']}/reblog")
    assert first.status_code == second.status_code == 200
    assert first.json()["id"] == second.json()["id"]
    boost = first.json()
    assert boost["reblog"]["id"] == post["id"]
    assert boost["reblog"]["reblogs_count"] == 1
    assert boost["reblog"]["reblogged"] is True
    assert boost["account"]["id"] == bob.id
    assert ("reblog", bob.account.id) in await _notifications(app, alice)

    by = (await alice.client.get(f"/api/v1/statuses/{post['id']}/reblogged_by")).json()
    assert [account["id"] for account in by] == [bob.id]
    listed = (await alice.client.get(f"/api/v1/accounts/{bob.id}/statuses")).json()
    assert [s["reblog"]["id"] for s in listed] == [post["id"]]
    assert (
        await alice.client.get(f"/api/v1/accounts/{bob.id}/statuses?exclude_reblogs=true")
    ).json() == []

    undone = await bob.client.post(f"/api/v1/statuses/{post['id']}/unreblog")
    assert undone.json()["reblogs_count"] == 0
    assert undone.json()["reblogged"] is False
    assert (await alice.client.get(f"/api/v1/statuses/{boost['id']}")).status_code == 404


async def test_direct_statuses_cannot_be_reblogged(alice: Person, bob: Person) -> None:
    dm = await _post(alice, status="@bob hush", visibility="direct")
    assert (await bob.client.post(f"/api/v1/statuses/{dm['id']}/reblog")).status_code == 403
    assert (await alice.client.post(f"/api/v1/statuses/{dm['id']}/reblog")).status_code == 403


async def test_bookmarks(alice: Person, bob: Person) -> None:
    posts = [await _post(alice, status=f"post {n}") for n in range(3)]
    for post in posts:
        await bob.client.post(f"/api/v1/statuses/{post['id']}/bookmark")
    await bob.client.post(f"/api/v1/statuses/{posts[0]['id']}/bookmark")
    page = await bob.client.get("/api/v1/bookmarks?limit=2")
    assert [s["id"] for s in page.json()] == [posts[2]["id"], posts[1]["id"]]
    assert all(s["bookmarked"] for s in page.json())
    next_url = page.headers["link"].split(";")[0].strip("<>")
    rest = await bob.client.get(next_url)
    assert [s["id"] for s in rest.json()] == [posts[0]["id"]]
    await bob.client.post(f"/api/v1/statuses/{posts[1]['id']}/unbookmark")
    remaining = (await bob.client.get("/api/v1/bookmarks")).json()
    assert [s["id"] for s in remaining] == [posts[2]["id"], posts[0]["id"]]


async def test_pins(alice: Person, bob: Person) -> None:
    posts = [await _post(alice, status=f"pin {n}") for n in range(6)]
    for post in posts[:5]:
        pinned = await alice.client.post(f"/api/v1/statuses/{post['id']}/pin")
        assert pinned.status_code == 200
        assert pinned.json()["pinned"] is True
    assert (await alice.client.post(f"/api/v1/statuses/{posts[5]['id']}/pin")).status_code == 422
    assert (await bob.client.post(f"/api/v1/statuses/{posts[5]['id']}/pin")).status_code == 422
    private = await _post(alice, status="mine", visibility="private")
    assert (await alice.client.post(f"/api/v1/statuses/{private['id']}/pin")).status_code == 422
    listed = (await bob.client.get(f"/api/v1/accounts/{alice.id}/statuses?pinned=true")).json()
    assert {s["id"] for s in listed} == {p["id"] for p in posts[:5]}
    await alice.client.post(f"/api/v1/statuses/{posts[0]['id']}/unpin")
    listed = (await bob.client.get(f"/api/v1/accounts/{alice.id}/statuses?pinned=1")).json()
    assert len(listed) == 4


async def test_delete_returns_text_and_undoes_counters(alice: Person, bob: Person) -> None:
    root = await _post(alice, status="root")
    reply = await _post(bob, status="gone soon", in_reply_to_id=root["id"])
    assert (await alice.client.delete(f"/api/v1/statuses/{reply['id']}")).status_code == 404
    deleted = await bob.client.delete(f"/api/v1/statuses/{reply['id']}")
    assert deleted.status_code == 200
    assert deleted.json()["text"] == "gone soon"
    assert (await bob.client.get(f"/api/v1/statuses/{reply['id']}")).status_code == 404
    assert (await bob.client.get(f"/api/v1/statuses/{root['id']}")).json()["replies_count"] == 0


async def test_quote_posts(alice: Person, bob: Person) -> None:
    original = await _post(alice, status="quotable")
    quote = await _post(bob, status="so true", quoted_status_id=original["id"])
    assert quote["quote"]["state"] == "accepted"
    assert quote["quote"]["quoted_status"]["id"] == original["id"]
    assert (await alice.client.get(f"/api/v1/statuses/{original['id']}")).json()[
        "quotes_count"
    ] == 1
    private = await _post(alice, status="not quotable", visibility="private")
    refused = await alice.client.post(
        "/api/v1/statuses", json={"status": "me", "quote_id": private["id"]}
    )
    assert refused.status_code == 422


async def test_deleting_ones_reblog_undoes_it(alice: Person, bob: Person) -> None:
    post = await _post(alice, status="boost and regret")
    boost = (await bob.client.post(f"/api/v1/statuses/{post['id']}/reblog")).json()
    assert (await alice.client.delete(f"/api/v1/statuses/{boost['id']}")).status_code == 404
    assert (await bob.client.delete(f"/api/v1/statuses/{boost['id']}")).status_code == 200
    original = (await alice.client.get(f"/api/v1/statuses/{post['id']}")).json()
    assert original["reblogs_count"] == 0
