"""The WebSocket endpoint, speaking Mastodon's message format."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from fastapi import FastAPI
from httpx_ws import AsyncWebSocketSession, WebSocketUpgradeError

from tests.conftest import Person, PersonFactory
from tests.streaming.conftest import WAIT, Post, Relate, WebSocketApp, connect_ws
from townsquare.conversations.service import conversation_id_of, record_direct_status
from townsquare.ids import new_id
from townsquare.state import state_of
from townsquare.statuses.models import Mention, Status
from townsquare.streaming.publish import publish


async def receive(session: AsyncWebSocketSession) -> dict[str, Any]:
    message = await asyncio.wait_for(session.receive_text(), WAIT)
    decoded = json.loads(message)
    assert isinstance(decoded, dict)
    return decoded


async def test_user_stream_sends_mastodon_messages(
    ws: WebSocketApp, alice: Person, bob: Person, post: Post, follow: Relate
) -> None:
    await follow(bob, alice)
    url = f"/api/v1/streaming?access_token={bob.token}&stream=user"
    async with connect_ws(ws, url) as session:
        status_id = await post(alice, "over the wire")
        message = await receive(session)
    assert message["stream"] == ["user"]
    assert message["event"] == "update"
    # The payload is the entity encoded as a JSON string, as Mastodon sends it.
    assert isinstance(message["payload"], str)
    assert json.loads(message["payload"])["id"] == str(status_id)


async def test_token_as_websocket_protocol_is_accepted_and_echoed(
    ws: WebSocketApp, alice: Person, post: Post
) -> None:
    async with connect_ws(
        ws, "/api/v1/streaming?stream=public", subprotocols=[alice.token]
    ) as session:
        assert session.subprotocol == alice.token
        status_id = await post(alice, "protocol token")
        message = await receive(session)
    assert message["stream"] == ["public"]
    assert json.loads(message["payload"])["id"] == str(status_id)


async def test_invalid_token_is_refused_before_upgrade(ws: WebSocketApp) -> None:
    with pytest.raises(WebSocketUpgradeError) as refused:
        async with connect_ws(ws, "/api/v1/streaming?access_token=forged&stream=user"):
            pass
    assert refused.value.response.status_code == 401


async def test_missing_token_is_refused_before_upgrade(ws: WebSocketApp) -> None:
    with pytest.raises(WebSocketUpgradeError) as refused:
        async with connect_ws(ws, "/api/v1/streaming?stream=public"):
            pass
    assert refused.value.response.status_code == 401


async def test_unknown_stream_gets_an_error_message(ws: WebSocketApp, alice: Person) -> None:
    async with connect_ws(ws, f"/api/v1/streaming?access_token={alice.token}") as session:
        await session.send_json({"type": "subscribe", "stream": "everything"})
        message = await receive(session)
        await session.send_json({"type": "subscribe", "stream": "hashtag"})
        no_tag = await receive(session)
    assert message == {"error": "Unknown stream type", "status": 400}
    assert no_tag == {"error": "No tag for stream provided", "status": 400}


async def test_subscribe_and_unsubscribe_by_message(
    ws: WebSocketApp, alice: Person, bob: Person, post: Post, app: FastAPI
) -> None:
    async with connect_ws(ws, f"/api/v1/streaming?access_token={bob.token}") as session:
        await session.send_json({"type": "subscribe", "stream": "hashtag", "tag": "Cats"})
        # Messages are handled in order: the error proves the subscription above is in place.
        await session.send_json({"type": "subscribe", "stream": "nothing"})
        assert (await receive(session))["error"] == "Unknown stream type"
        async with state_of(app).db.write() as session_db:
            publish(session_db, "hashtag:cats", "update", {"status_id": await post(alice, "#cats")})
        message = await receive(session)
        assert message["stream"] == ["hashtag", "Cats"]
        assert message["event"] == "update"

        await session.send_json({"type": "unsubscribe", "stream": "hashtag", "tag": "cats"})
        await session.send_json({"type": "subscribe", "stream": "public"})
        await session.send_json({"type": "subscribe", "stream": "nothing"})
        assert (await receive(session))["error"] == "Unknown stream type"
        async with state_of(app).db.write() as session_db:
            publish(session_db, "hashtag:cats", "update", {"status_id": await post(alice, "x")})
        # Only the public stream is left; the hashtag event is not sent again.
        message = await receive(session)
    assert message["stream"] == ["public"]


async def test_direct_conversation_reaches_only_its_participants(
    ws: WebSocketApp, make_person: PersonFactory, app: FastAPI
) -> None:
    sender = await make_person("sender")
    recipient = await make_person("recipient")
    outsider = await make_person("outsider")
    state = state_of(app)

    def url(person: Person) -> str:
        return f"/api/v1/streaming?access_token={person.token}&stream=direct"

    async with (
        connect_ws(ws, url(sender)) as sender_ws,
        connect_ws(ws, url(recipient)) as recipient_ws,
        connect_ws(ws, url(outsider)) as outsider_ws,
    ):
        async with state.db.write() as session:
            status = Status(
                id=new_id(),
                account_id=sender.account.id,
                text="just between us",
                content_html="<p>just between us</p>",
                visibility="direct",
            )
            session.add(status)
            await session.flush()
            session.add(Mention(status_id=status.id, account_id=recipient.account.id))
            await record_direct_status(session, status, [recipient.account.id])
            conversation_id = conversation_id_of(status)
            # A forged event naming the outsider's channel still needs membership to be sent.
            publish(
                session,
                f"direct:{outsider.account.id}",
                "conversation",
                {"conversation_id": conversation_id, "account_id": outsider.account.id},
            )
        for_recipient = await receive(recipient_ws)
        for_sender = await receive(sender_ws)
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(outsider_ws.receive_text(), 0.5)
    assert for_recipient["stream"] == ["direct"]
    assert for_recipient["event"] == "conversation"
    conversation = json.loads(for_recipient["payload"])
    assert conversation["id"] == str(conversation_id)
    assert conversation["unread"] is True
    assert [account["id"] for account in conversation["accounts"]] == [sender.id]
    assert conversation["last_status"]["id"] == str(status.id)
    assert json.loads(for_sender["payload"])["accounts"][0]["id"] == recipient.id
