"""What other parts learn from status changes: streaming events, notifications, mutes in threads."""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import FastAPI
from sqlalchemy import select

from tests.conftest import Person
from townsquare.graph.models import Mute
from townsquare.ids import new_id
from townsquare.notifications.models import Notification
from townsquare.state import state_of
from townsquare.streaming.models import StreamEvent


async def _post(person: Person, **params: Any) -> dict[str, Any]:
    response = await person.client.post("/api/v1/statuses", json=params)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def _events(app: FastAPI, event: str) -> list[tuple[str, Any]]:
    async with state_of(app).db.read() as session:
        rows = await session.execute(
            select(StreamEvent.channel, StreamEvent.payload).where(StreamEvent.event == event)
        )
        return [(channel, orjson.loads(payload)) for channel, payload in rows]


async def test_edit_and_delete_are_streamed(app: FastAPI, alice: Person) -> None:
    post = await _post(alice, status="draft #news")
    await alice.client.put(f"/api/v1/statuses/{post['id']}", json={"status": "final #news"})
    updates = await _events(app, "status.update")
    channels = {channel for channel, payload in updates if str(payload["status_id"]) == post["id"]}
    assert {f"user:{alice.id}", "public", "hashtag:news"} <= channels

    await alice.client.delete(f"/api/v1/statuses/{post['id']}")
    deletes = await _events(app, "delete")
    assert ("deletes", {"status_id": int(post["id"])}) in deletes


async def test_mentions_and_replies_notify(
    app: FastAPI, alice: Person, bob: Person, carol: Person
) -> None:
    root = await _post(alice, status="hello @carol")
    await _post(bob, status="nice", in_reply_to_id=root["id"])
    async with state_of(app).db.read() as session:
        rows = (
            await session.execute(
                select(Notification.account_id, Notification.type, Notification.from_account_id)
            )
        ).all()
    assert (carol.account.id, "mention", alice.account.id) in rows
    assert (alice.account.id, "mention", bob.account.id) in rows


async def test_muted_replies_leave_the_muters_thread(
    app: FastAPI, alice: Person, bob: Person, carol: Person
) -> None:
    root = await _post(alice, status="root")
    reply = await _post(bob, status="noise", in_reply_to_id=root["id"])
    async with state_of(app).db.write() as session:
        session.add(
            Mute(id=new_id(), account_id=alice.account.id, target_account_id=bob.account.id)
        )
    mine = (await alice.client.get(f"/api/v1/statuses/{root['id']}/context")).json()
    assert mine["descendants"] == []
    theirs = (await carol.client.get(f"/api/v1/statuses/{root['id']}/context")).json()
    assert [s["id"] for s in theirs["descendants"]] == [reply["id"]]
    # Opened on purpose, a muted account's status still shows.
    assert (await alice.client.get(f"/api/v1/statuses/{reply['id']}")).status_code == 200
