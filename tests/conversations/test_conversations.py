"""Direct-message conversations: visible to participants only, read state, hiding."""

from __future__ import annotations

import re

from fastapi import FastAPI

from tests.conftest import Person
from townsquare.conversations.service import forget_direct_status
from townsquare.state import state_of
from townsquare.statuses.models import Status


async def direct(person: Person, text: str, **extra: object) -> dict[str, object]:
    response = await person.client.post(
        "/api/v1/statuses", json={"status": text, "visibility": "direct", **extra}
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert isinstance(body, dict)
    return body


async def conversations(person: Person, **params: object) -> list[dict[str, object]]:
    response = await person.client.get("/api/v1/conversations", params=params)
    assert response.status_code == 200
    body = response.json()
    assert isinstance(body, list)
    return body


async def test_direct_message_shows_up_for_both_participants_only(
    alice: Person, bob: Person, carol: Person
) -> None:
    status = await direct(alice, "@bob psst")

    [for_bob] = await conversations(bob)
    assert for_bob["unread"] is True
    assert [a["id"] for a in for_bob["accounts"]] == [alice.id]  # type: ignore[attr-defined]
    assert for_bob["last_status"]["id"] == status["id"]  # type: ignore[index]
    assert isinstance(for_bob["id"], str)

    [for_alice] = await conversations(alice)
    assert for_alice["id"] == for_bob["id"]
    assert for_alice["unread"] is False
    assert [a["id"] for a in for_alice["accounts"]] == [bob.id]  # type: ignore[attr-defined]

    assert await conversations(carol) == []
    conversation_id = for_bob["id"]
    assert (
        await carol.client.post(f"/api/v1/conversations/{conversation_id}/read")
    ).status_code == 404
    assert (
        await carol.client.delete(f"/api/v1/conversations/{conversation_id}")
    ).status_code == 404


async def test_reply_continues_the_conversation(alice: Person, bob: Person) -> None:
    first = await direct(alice, "@bob lunch?")
    reply = await direct(bob, "@alice sure", in_reply_to_id=first["id"])
    [for_alice] = await conversations(alice)
    assert for_alice["unread"] is True
    assert for_alice["last_status"]["id"] == reply["id"]  # type: ignore[index]
    [for_bob] = await conversations(bob)
    assert for_bob["id"] == for_alice["id"]
    assert for_bob["unread"] is False


async def test_mark_read(alice: Person, bob: Person) -> None:
    await direct(alice, "@bob news")
    [conversation] = await conversations(bob)
    read = await bob.client.post(f"/api/v1/conversations/{conversation['id']}/read")
    assert read.status_code == 200
    assert read.json()["unread"] is False
    assert (await conversations(bob))[0]["unread"] is False


async def test_removing_hides_for_the_caller_until_a_new_message(
    alice: Person, bob: Person
) -> None:
    first = await direct(alice, "@bob one")
    [conversation] = await conversations(bob)
    removed = await bob.client.delete(f"/api/v1/conversations/{conversation['id']}")
    assert removed.status_code == 200
    assert await conversations(bob) == []
    assert len(await conversations(alice)) == 1

    await direct(alice, "@bob two", in_reply_to_id=first["id"])
    assert [c["id"] for c in await conversations(bob)] == [conversation["id"]]


async def test_blocked_participant_gets_no_conversation(alice: Person, bob: Person) -> None:
    await bob.client.post(f"/api/v1/accounts/{alice.id}/block")
    await direct(alice, "@bob hello?")
    assert await conversations(bob) == []


async def test_conversations_page_with_link_header(
    alice: Person, bob: Person, carol: Person
) -> None:
    await direct(alice, "@bob first")
    await direct(alice, "@carol second")
    await direct(alice, "@bob third")
    page = await alice.client.get("/api/v1/conversations", params={"limit": 2})
    assert len(page.json()) == 2
    next_url = re.search(r'<([^>]+)>; rel="next"', page.headers["link"])
    assert next_url is not None
    rest = (await alice.client.get(next_url.group(1))).json()
    assert len(rest) == 1
    assert rest[0]["last_status"]["content"].find("first") >= 0


async def test_unknown_conversation_is_not_found(alice: Person) -> None:
    assert (await alice.client.post("/api/v1/conversations/123/read")).status_code == 404
    assert (await alice.client.delete("/api/v1/conversations/abc")).status_code == 404


async def test_deleting_the_last_message_falls_back_to_the_one_before(
    app: FastAPI, alice: Person, bob: Person
) -> None:
    first = await direct(alice, "@bob keep this")
    second = await direct(alice, "@bob delete this", in_reply_to_id=first["id"])
    db = state_of(app).db
    async with db.write() as session:
        status = await session.get(Status, int(str(second["id"])))
        assert status is not None
        await forget_direct_status(session, status)
        await session.delete(status)
    [for_bob] = await conversations(bob)
    assert for_bob["last_status"]["id"] == first["id"]  # type: ignore[index]

    async with db.write() as session:
        status = await session.get(Status, int(str(first["id"])))
        assert status is not None
        await forget_direct_status(session, status)
        await session.delete(status)
    assert await conversations(bob) == []
    assert await conversations(alice) == []
