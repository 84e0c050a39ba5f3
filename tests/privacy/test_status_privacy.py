"""Privacy on every statuses endpoint: followers-only posts, direct messages and blocks."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

from tests.conftest import Person
from townsquare.graph.models import Block, Follow
from townsquare.ids import new_id
from townsquare.state import state_of


async def _follow(app: FastAPI, follower: Person, target: Person) -> None:
    async with state_of(app).db.write() as session:
        session.add(
            Follow(id=new_id(), account_id=follower.account.id, target_account_id=target.account.id)
        )


async def _block(app: FastAPI, blocker: Person, target: Person) -> None:
    async with state_of(app).db.write() as session:
        session.add(
            Block(id=new_id(), account_id=blocker.account.id, target_account_id=target.account.id)
        )


async def _post(person: Person, **params: Any) -> dict[str, Any]:
    response = await person.client.post("/api/v1/statuses", json=params)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def _ids(person: Person | None, client: Any, path: str) -> list[str]:
    response = await client.get(path)
    assert response.status_code == 200, response.text
    return [item["id"] for item in response.json()]


async def test_followers_only_post_is_hidden_from_others(
    app: FastAPI, client: Any, alice: Person, bob: Person, carol: Person
) -> None:
    await _follow(app, bob, alice)
    root = await _post(alice, status="public root")
    secret = await _post(alice, status="for followers", visibility="private")
    reply = await _post(
        alice, status="private reply", visibility="private", in_reply_to_id=root["id"]
    )
    await bob.client.post(f"/api/v1/statuses/{secret['id']}/favourite")

    assert (await bob.client.get(f"/api/v1/statuses/{secret['id']}")).status_code == 200
    for outsider in (carol.client, client):
        assert (await outsider.get(f"/api/v1/statuses/{secret['id']}")).status_code == 404
        for path in ("context", "favourited_by", "reblogged_by", "history"):
            response = await outsider.get(f"/api/v1/statuses/{secret['id']}/{path}")
            assert response.status_code == 404, path
        listed = await _ids(None, outsider, f"/api/v1/accounts/{alice.id}/statuses")
        assert listed == [root["id"]]
        context = (await outsider.get(f"/api/v1/statuses/{root['id']}/context")).json()
        assert context["descendants"] == []
        many = await _ids(None, outsider, f"/api/v1/statuses?id[]={secret['id']}&id[]={root['id']}")
        assert many == [root["id"]]

    follower_view = await _ids(bob, bob.client, f"/api/v1/accounts/{alice.id}/statuses")
    assert follower_view == [reply["id"], secret["id"], root["id"]]
    context = (await bob.client.get(f"/api/v1/statuses/{root['id']}/context")).json()
    assert [s["id"] for s in context["descendants"]] == [reply["id"]]

    # Nobody may act on what they cannot see.
    for action in ("favourite", "reblog", "bookmark"):
        response = await carol.client.post(f"/api/v1/statuses/{secret['id']}/{action}")
        assert response.status_code == 404, action
    response = await carol.client.post(
        "/api/v1/statuses", json={"status": "sneaky", "in_reply_to_id": secret["id"]}
    )
    assert response.status_code == 404
    # Followers may see it but not spread it.
    assert (await bob.client.post(f"/api/v1/statuses/{secret['id']}/reblog")).status_code == 403


async def test_direct_message_reaches_only_those_mentioned(
    client: Any, alice: Person, bob: Person, carol: Person
) -> None:
    dm = await _post(alice, status="@bob just between us", visibility="direct")
    assert (await bob.client.get(f"/api/v1/statuses/{dm['id']}")).status_code == 200
    assert (await carol.client.get(f"/api/v1/statuses/{dm['id']}")).status_code == 404
    assert (await client.get(f"/api/v1/statuses/{dm['id']}")).status_code == 404
    assert await _ids(carol, carol.client, f"/api/v1/accounts/{alice.id}/statuses") == []

    answer = await bob.client.post(
        "/api/v1/statuses", json={"status": "@alice sure", "in_reply_to_id": dm["id"]}
    )
    assert answer.status_code == 200
    assert answer.json()["visibility"] == "direct"
    thread = (await alice.client.get(f"/api/v1/statuses/{dm['id']}/context")).json()
    assert [s["id"] for s in thread["descendants"]] == [answer.json()["id"]]
    assert (await carol.client.get(f"/api/v1/statuses/{answer.json()['id']}")).status_code == 404


async def test_blocked_account_cannot_see_or_touch_the_blocker(
    app: FastAPI, alice: Person, bob: Person
) -> None:
    post = await _post(alice, status="hello world")
    await bob.client.post(f"/api/v1/statuses/{post['id']}/bookmark")
    await _block(app, alice, bob)

    assert (await bob.client.get(f"/api/v1/statuses/{post['id']}")).status_code == 404
    for action in ("favourite", "reblog", "bookmark"):
        response = await bob.client.post(f"/api/v1/statuses/{post['id']}/{action}")
        assert response.status_code == 404, action
    reply = await bob.client.post(
        "/api/v1/statuses", json={"status": "hey", "in_reply_to_id": post["id"]}
    )
    assert reply.status_code == 404
    assert await _ids(bob, bob.client, f"/api/v1/accounts/{alice.id}/statuses") == []
    assert await _ids(bob, bob.client, "/api/v1/bookmarks") == []

    # The blocker does not see the blocked either, in threads or favourites lists.
    bobs = await _post(bob, status="bob speaks")
    assert (await alice.client.get(f"/api/v1/statuses/{bobs['id']}")).status_code == 404
