"""Notifications: who gets them, filtering, dismissing and clearing."""

from __future__ import annotations

import re

from fastapi import FastAPI
from sqlalchemy import select

from tests.conftest import Person, PersonFactory
from townsquare.notifications.service import notify
from townsquare.state import state_of
from townsquare.streaming.models import StreamEvent


async def notifications(person: Person, **params: object) -> list[dict[str, object]]:
    response = await person.client.get("/api/v1/notifications", params=params)
    assert response.status_code == 200
    body = response.json()
    assert isinstance(body, list)
    return body


async def post(person: Person, text: str, **extra: object) -> dict[str, object]:
    response = await person.client.post("/api/v1/statuses", json={"status": text, **extra})
    assert response.status_code == 200, response.text
    body = response.json()
    assert isinstance(body, dict)
    return body


async def test_follow_notifies_the_followed(alice: Person, bob: Person) -> None:
    await alice.client.post(f"/api/v1/accounts/{bob.id}/follow")
    [note] = await notifications(bob)
    assert note["type"] == "follow"
    assert note["account"]["id"] == alice.id  # type: ignore[index]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", str(note["created_at"]))
    assert "status" not in note or note["status"] is None
    assert await notifications(alice) == []


async def test_follow_request_notification(make_person: PersonFactory, alice: Person) -> None:
    dora = await make_person("dora", locked=True)
    await alice.client.post(f"/api/v1/accounts/{dora.id}/follow")
    assert [n["type"] for n in await notifications(dora)] == ["follow_request"]


async def test_refollowing_does_not_notify_twice(alice: Person, bob: Person) -> None:
    await alice.client.post(f"/api/v1/accounts/{bob.id}/follow")
    await alice.client.post(f"/api/v1/accounts/{bob.id}/follow")
    assert len(await notifications(bob)) == 1


async def test_mention_notification_carries_the_status(alice: Person, bob: Person) -> None:
    status = await post(alice, "hello @bob")
    [note] = await notifications(bob)
    assert note["type"] == "mention"
    assert note["status"]["id"] == status["id"]  # type: ignore[index]


async def test_types_and_exclude_types(alice: Person, bob: Person) -> None:
    await alice.client.post(f"/api/v1/accounts/{bob.id}/follow")
    await post(alice, "hi @bob")
    assert [n["type"] for n in await notifications(bob)] == ["mention", "follow"]
    assert [n["type"] for n in await notifications(bob, **{"types[]": "follow"})] == ["follow"]
    only_mentions = await notifications(bob, **{"exclude_types[]": "follow"})
    assert [n["type"] for n in only_mentions] == ["mention"]
    assert await notifications(bob, **{"types[]": "nonsense"}) == []
    from_alice = await notifications(bob, account_id=alice.id)
    assert len(from_alice) == 2


async def test_paging_with_link_header(make_person: PersonFactory, alice: Person) -> None:
    for i in range(3):
        fan = await make_person(f"fan{i}")
        await fan.client.post(f"/api/v1/accounts/{alice.id}/follow")
    first = await alice.client.get("/api/v1/notifications", params={"limit": 2})
    assert len(first.json()) == 2
    next_url = re.search(r'<([^>]+)>; rel="next"', first.headers["link"])
    assert next_url is not None
    rest = (await alice.client.get(next_url.group(1))).json()
    assert [n["account"]["username"] for n in rest] == ["fan0"]


async def test_muted_sender_does_not_notify(alice: Person, bob: Person) -> None:
    await bob.client.post(f"/api/v1/accounts/{alice.id}/mute")
    await alice.client.post(f"/api/v1/accounts/{bob.id}/follow")
    await post(alice, "hey @bob")
    assert await notifications(bob) == []


async def test_mute_without_notifications_still_notifies(alice: Person, bob: Person) -> None:
    await bob.client.post(f"/api/v1/accounts/{alice.id}/mute", json={"notifications": False})
    await alice.client.post(f"/api/v1/accounts/{bob.id}/follow")
    assert [n["type"] for n in await notifications(bob)] == ["follow"]


async def test_notifications_from_later_blocked_sender_are_hidden(
    alice: Person, bob: Person
) -> None:
    await post(alice, "hey @bob")
    assert len(await notifications(bob)) == 1
    await bob.client.post(f"/api/v1/accounts/{alice.id}/block")
    assert await notifications(bob) == []


async def test_show_dismiss_and_clear(alice: Person, bob: Person, carol: Person) -> None:
    await alice.client.post(f"/api/v1/accounts/{bob.id}/follow")
    await carol.client.post(f"/api/v1/accounts/{bob.id}/follow")
    first, second = await notifications(bob)

    shown = await bob.client.get(f"/api/v1/notifications/{first['id']}")
    assert shown.status_code == 200
    assert shown.json()["id"] == first["id"]
    # Nobody else can read or dismiss it.
    assert (await alice.client.get(f"/api/v1/notifications/{first['id']}")).status_code == 404
    stranger = await alice.client.post(f"/api/v1/notifications/{first['id']}/dismiss")
    assert stranger.status_code == 404

    dismissed = await bob.client.post(f"/api/v1/notifications/{first['id']}/dismiss")
    assert dismissed.status_code == 200
    assert [n["id"] for n in await notifications(bob)] == [second["id"]]

    cleared = await bob.client.post("/api/v1/notifications/clear")
    assert cleared.status_code == 200
    assert await notifications(bob) == []


async def test_unread_count_follows_the_marker(alice: Person, bob: Person, carol: Person) -> None:
    await alice.client.post(f"/api/v1/accounts/{bob.id}/follow")
    await carol.client.post(f"/api/v1/accounts/{bob.id}/follow")
    count = await bob.client.get("/api/v1/notifications/unread_count")
    assert count.status_code == 200
    assert count.json() == {"count": 2}
    assert (await bob.client.get("/api/v1/notifications/unread_count?limit=1")).json() == {
        "count": 1
    }


async def test_notify_skips_self_and_publishes_once(
    app: FastAPI, alice: Person, bob: Person
) -> None:
    db = state_of(app).db
    async with db.write() as session:
        assert (
            await notify(
                session,
                recipient_id=alice.account.id,
                from_account_id=alice.account.id,
                type="follow",
            )
            is None
        )
        created = await notify(
            session, recipient_id=bob.account.id, from_account_id=alice.account.id, type="follow"
        )
        again = await notify(
            session, recipient_id=bob.account.id, from_account_id=alice.account.id, type="follow"
        )
    assert created is not None
    assert again is None
    async with db.read() as session:
        events = (
            await session.scalars(
                select(StreamEvent).where(StreamEvent.channel == f"user:{bob.account.id}")
            )
        ).all()
    assert [e.event for e in events] == ["notification"]
    assert str(created.id) in events[0].payload


async def test_notifications_need_a_token(client) -> None:  # type: ignore[no-untyped-def]
    assert (await client.get("/api/v1/notifications")).status_code == 401
