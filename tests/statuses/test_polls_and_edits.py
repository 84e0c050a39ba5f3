"""Polls (voting rules, results, the end notification) and edits (history, source)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from fastapi import FastAPI
from sqlalchemy import select, update

from tests.conftest import Person
from townsquare.notifications.models import Notification
from townsquare.state import state_of
from townsquare.statuses.models import Poll
from townsquare.statuses.polls import end_poll


async def _post(person: Person, **params: Any) -> dict[str, Any]:
    response = await person.client.post("/api/v1/statuses", json=params)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_single_choice_poll(alice: Person, bob: Person, carol: Person) -> None:
    post = await _post(
        alice, status="Tea or coffee?", poll={"options": ["tea", "coffee"], "expires_in": 3600}
    )
    poll_id = post["poll"]["id"]
    assert (
        await bob.client.post(f"/api/v1/polls/{poll_id}/votes", json={"choices": [0, 1]})
    ).status_code == 422
    assert (
        await bob.client.post(f"/api/v1/polls/{poll_id}/votes", json={"choices": [2]})
    ).status_code == 422
    assert (
        await bob.client.post(f"/api/v1/polls/{poll_id}/votes", json={"choices": []})
    ).status_code == 422
    voted = await bob.client.post(f"/api/v1/polls/{poll_id}/votes", data={"choices[]": "1"})
    assert voted.status_code == 200, voted.text
    assert voted.json()["own_votes"] == [1]
    assert voted.json()["voted"] is True
    assert [o["votes_count"] for o in voted.json()["options"]] == [0, 1]
    again = await bob.client.post(f"/api/v1/polls/{poll_id}/votes", json={"choices": [0]})
    assert again.status_code == 422
    seen = (await carol.client.get(f"/api/v1/polls/{poll_id}")).json()
    assert seen["votes_count"] == 1
    assert seen["voted"] is False
    assert seen["voters_count"] is None


async def test_multiple_choice_poll_with_hidden_totals(alice: Person, bob: Person) -> None:
    post = await _post(
        alice,
        status="Pick any",
        poll={
            "options": ["a", "b", "c"],
            "expires_in": 3600,
            "multiple": True,
            "hide_totals": True,
        },
    )
    poll_id = post["poll"]["id"]
    voted = await bob.client.post(f"/api/v1/polls/{poll_id}/votes", json={"choices": [0, 2]})
    assert voted.status_code == 200
    body = voted.json()
    assert body["votes_count"] == 2
    assert body["voters_count"] == 1
    assert [o["votes_count"] for o in body["options"]] == [None, None, None]


async def test_ended_poll_refuses_votes_and_notifies(
    app: FastAPI, alice: Person, bob: Person
) -> None:
    post = await _post(alice, status="Quick", poll={"options": ["y", "n"], "expires_in": 300})
    poll_id = int(post["poll"]["id"])
    await bob.client.post(f"/api/v1/polls/{poll_id}/votes", json={"choices": [0]})
    state = state_of(app)
    async with state.db.write() as session:
        await session.execute(
            update(Poll)
            .where(Poll.id == poll_id)
            .values(expires_at=dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1))
        )
    late = await alice.client.post(f"/api/v1/polls/{poll_id}/votes", json={"choices": [1]})
    assert late.status_code == 422
    assert (await bob.client.get(f"/api/v1/polls/{poll_id}")).json()["expired"] is True

    await end_poll(state, {"poll_id": poll_id})
    await end_poll(state, {"poll_id": poll_id})
    async with state.db.read() as session:
        notified = list(
            await session.scalars(
                select(Notification.account_id).where(Notification.type == "poll")
            )
        )
    # Voters hear once, however often the job runs. (The author's own copy is up to the
    # notifications service, which drops notifications from oneself.)
    assert notified.count(bob.account.id) == 1


async def test_poll_of_a_hidden_status_is_hidden(alice: Person, bob: Person) -> None:
    post = await _post(
        alice,
        status="followers only",
        visibility="private",
        poll={"options": ["a", "b"], "expires_in": 600},
    )
    poll_id = post["poll"]["id"]
    assert (await bob.client.get(f"/api/v1/polls/{poll_id}")).status_code == 404
    assert (
        await bob.client.post(f"/api/v1/polls/{poll_id}/votes", json={"choices": [0]})
    ).status_code == 404


async def test_edit_keeps_history(alice: Person, bob: Person) -> None:
    post = await _post(alice, status="first words")
    await bob.client.post(f"/api/v1/statuses/{post['id']}/reblog")
    edited = await alice.client.put(
        f"/api/v1/statuses/{post['id']}", json={"status": "second words", "spoiler_text": "cw"}
    )
    assert edited.status_code == 200, edited.text
    assert edited.json()["content"] == "<p>second words</p>"
    assert edited.json()["edited_at"] is not None
    await alice.client.put(f"/api/v1/statuses/{post['id']}", json={"status": "third words"})

    history = (await bob.client.get(f"/api/v1/statuses/{post['id']}/history")).json()
    assert [h["content"] for h in history] == [
        "<p>first words</p>",
        "<p>second words</p>",
        "<p>third words</p>",
    ]
    assert history[1]["spoiler_text"] == "cw"
    source = (await alice.client.get(f"/api/v1/statuses/{post['id']}/source")).json()
    assert source == {"id": post["id"], "text": "third words", "spoiler_text": ""}

    assert (
        await bob.client.put(f"/api/v1/statuses/{post['id']}", json={"status": "hijack"})
    ).status_code == 404
    too_long = await alice.client.put(f"/api/v1/statuses/{post['id']}", json={"status": "x" * 600})
    assert too_long.status_code == 422
    unchanged = (await alice.client.get(f"/api/v1/statuses/{post['id']}")).json()
    assert unchanged["content"] == "<p>third words</p>"


async def test_unedited_status_has_a_one_entry_history(alice: Person) -> None:
    post = await _post(alice, status="as written")
    history = (await alice.client.get(f"/api/v1/statuses/{post['id']}/history")).json()
    assert [h["content"] for h in history] == ["<p>as written</p>"]


async def test_context_orders_thread_like_mastodon(alice: Person, bob: Person) -> None:
    root = await _post(alice, status="root")
    a = await _post(bob, status="a", in_reply_to_id=root["id"])
    b = await _post(alice, status="b", in_reply_to_id=root["id"])
    a1 = await _post(alice, status="a1", in_reply_to_id=a["id"])
    a1x = await _post(bob, status="a1x", in_reply_to_id=a1["id"])
    context = (await bob.client.get(f"/api/v1/statuses/{a1['id']}/context")).json()
    assert [s["id"] for s in context["ancestors"]] == [root["id"], a["id"]]
    assert [s["id"] for s in context["descendants"]] == [a1x["id"]]
    whole = (await bob.client.get(f"/api/v1/statuses/{root['id']}/context")).json()
    assert whole["ancestors"] == []
    assert [s["id"] for s in whole["descendants"]] == [a["id"], a1["id"], a1x["id"], b["id"]]
