"""Room lifecycle, roles and permissions through the JSON API."""

from __future__ import annotations

import datetime as dt

from fastapi import FastAPI

from tests.conftest import Person
from tests.rooms.conftest import WS, OpenRoom, listen_url, listeners_in, next_frame, wait_for
from tests.streaming.conftest import connect_ws
from townsquare.graph.models import Follow
from townsquare.ids import new_id
from townsquare.jobs.runner import run_pending_jobs
from townsquare.rooms.hub import RoomHub
from townsquare.state import state_of


async def test_a_scheduled_room_starts_and_ends(alice: Person, bob: Person) -> None:
    later = (dt.datetime.now(dt.UTC) + dt.timedelta(hours=2)).isoformat()
    created = await alice.client.post(
        "/api/v1/rooms", json={"title": "  Evening talk ", "scheduled_at": later}
    )
    assert created.status_code == 200
    room = created.json()
    assert room["state"] == "scheduled" and room["title"] == "Evening talk"
    assert room["host"]["id"] == alice.id and room["role"] == "host"
    assert room["url"].endswith(f"/rooms/{room['id']}")

    assert (await bob.client.post(f"/api/v1/rooms/{room['id']}/start")).status_code == 403
    started = await alice.client.post(f"/api/v1/rooms/{room['id']}/start")
    assert started.json()["state"] == "live" and started.json()["started_at"]
    listed = await bob.client.get("/api/v1/rooms")
    assert [r["id"] for r in listed.json()] == [room["id"]]
    assert listed.json()[0]["role"] is None

    ended = await alice.client.post(f"/api/v1/rooms/{room['id']}/end")
    assert ended.json()["state"] == "ended" and ended.json()["ended_at"]
    assert (await alice.client.post(f"/api/v1/rooms/{room['id']}/start")).status_code == 409
    assert (await bob.client.get("/api/v1/rooms")).json() == []


async def test_bad_input_is_refused(alice: Person, client: object) -> None:
    for body in (
        {"title": ""},
        {"title": "x" * 201},
        {"title": "ok", "visibility": "secret"},
        {"title": "ok", "scheduled_at": "2001-01-01T00:00:00Z"},
        {"title": "ok", "scheduled_at": "not a date"},
    ):
        response = await alice.client.post("/api/v1/rooms", json=body)
        assert response.status_code == 422, body
        assert "error" in response.json()
    assert (await alice.client.get("/api/v1/rooms/12345")).status_code == 404
    assert (await alice.client.get("/api/v1/rooms/nonsense")).status_code == 404
    assert (await alice.client.get("/api/v1/rooms")).json() == []


async def test_starting_announces_the_room_to_followers(
    app: FastAPI, alice: Person, bob: Person, open_room: OpenRoom
) -> None:
    state = state_of(app)
    async with state.db.write() as session:
        session.add(
            Follow(id=new_id(), account_id=bob.account.id, target_account_id=alice.account.id)
        )
    room = await open_room(alice, "Launch day")
    assert room["status_id"]
    status = (await bob.client.get(f"/api/v1/statuses/{room['status_id']}")).json()
    assert status["account"]["id"] == alice.id
    assert f"/rooms/{room['id']}" in status["content"]
    await run_pending_jobs(state, wait_seconds=5)
    notifications = (await bob.client.get("/api/v1/notifications")).json()
    assert [(n["type"], n["status"]["id"]) for n in notifications] == [
        ("status", room["status_id"])
    ]
    home = (await bob.client.get("/api/v1/timelines/home")).json()
    assert room["status_id"] in [s["id"] for s in home]


async def test_roles_hands_and_who_may_manage(
    alice: Person, bob: Person, carol: Person, open_room: OpenRoom
) -> None:
    room = await open_room(alice)
    base = f"/api/v1/rooms/{room['id']}"
    raised = await bob.client.post(f"{base}/hand")
    assert raised.status_code == 200 and raised.json()["hand_raised_at"]
    # A listener cannot hand out the microphone.
    assert (
        await carol.client.post(f"{base}/speakers", json={"account_id": bob.id})
    ).status_code == 403
    assert (await alice.client.post(f"{base}/cohosts", json={"account_id": carol.id})).json()[
        "role"
    ] == "cohost"
    # A co-host invites to speak, but does not appoint co-hosts.
    spoken = await carol.client.post(f"{base}/speakers", json={"account_id": bob.id})
    assert spoken.json()["role"] == "speaker" and spoken.json()["hand_raised_at"] is None
    assert (
        await carol.client.post(f"{base}/cohosts", json={"account_id": bob.id})
    ).status_code == 403
    assert (
        await carol.client.post(f"{base}/remove", json={"account_id": alice.id})
    ).status_code == 403
    assert (
        await carol.client.post(f"{base}/speakers", json={"account_id": "999"})
    ).status_code == 404

    people = (await bob.client.get(f"{base}/participants")).json()
    assert [(p["account"]["id"], p["role"]) for p in people] == [
        (alice.id, "host"),
        (bob.id, "speaker"),
        (carol.id, "cohost"),
    ]
    assert (await bob.client.get(base)).json()["role"] == "speaker"


async def test_reactions_and_hands_reach_listeners(
    ws: WS, hub: RoomHub, alice: Person, bob: Person, open_room: OpenRoom
) -> None:
    room = await open_room(alice)
    base = f"/api/v1/rooms/{room['id']}"
    async with connect_ws(ws, listen_url(room, bob)) as listener:
        await wait_for(lambda: listeners_in(hub, room) == 1)
        assert (await bob.client.post(f"{base}/reactions", json={"emoji": "🔥"})).status_code == 200
        assert (
            await bob.client.post(f"{base}/reactions", json={"emoji": "<script>"})
        ).status_code == 422
        await bob.client.post(f"{base}/hand")
        reaction = await next_frame(listener)
        hand = await next_frame(listener)
    assert reaction == {"type": "reaction", "account_id": bob.id, "emoji": "🔥"}
    assert hand == {"type": "hand", "account_id": bob.id, "raised": True}
    assert (await alice.client.get(base)).json()["listeners_count"] == 0
