"""Server-sent event streams: what reaches whom, and what never does."""

from __future__ import annotations

import asyncio
import json

import httpx
from fastapi import FastAPI

from tests.conftest import Person, PersonFactory
from tests.streaming.conftest import WAIT, Post, Relate, open_stream
from townsquare.ids import new_id
from townsquare.jobs.runner import run_pending_jobs
from townsquare.media.models import MediaAttachment
from townsquare.state import state_of
from townsquare.statuses.models import Status
from townsquare.streaming.publish import publish
from townsquare.timelines.fanout import enqueue_fanout


async def test_health_says_ok(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/v1/streaming/health")
    assert response.status_code == 200
    assert response.text == "OK"
    assert response.headers["content-type"].startswith("text/plain")


async def test_follower_sees_new_status_on_user_stream(
    sse: httpx.AsyncClient, alice: Person, bob: Person, post: Post, follow: Relate
) -> None:
    await follow(bob, alice)
    async with open_stream(sse, bob, "user") as events:
        status_id = await post(alice, "fresh off the press")
        event, data = await events.next()
    assert event == "update"
    status = json.loads(data)
    assert status["id"] == str(status_id)
    assert status["account"]["id"] == alice.id
    assert "fresh off the press" in status["content"]


async def test_public_stream_gets_public_posts_and_deletes(
    sse: httpx.AsyncClient, alice: Person, bob: Person, post: Post, app: FastAPI
) -> None:
    async with open_stream(sse, bob, "public") as events:
        status_id = await post(alice, "hello everyone")
        event, data = await events.next()
        assert (event, json.loads(data)["id"]) == ("update", str(status_id))
        async with state_of(app).db.write() as session:
            publish(session, "deletes", "delete", {"status_id": status_id})
        assert await events.next() == ("delete", str(status_id))


async def test_private_post_never_reaches_a_non_follower(
    sse: httpx.AsyncClient, make_person: PersonFactory, post: Post, follow: Relate, app: FastAPI
) -> None:
    author = await make_person("author")
    friend = await make_person("friend")
    stranger = await make_person("stranger")
    follower = await make_person("follower")
    await follow(follower, author)
    await follow(stranger, friend)
    async with (
        open_stream(sse, stranger, "user") as stranger_home,
        open_stream(sse, stranger, "public") as stranger_public,
        open_stream(sse, follower, "user") as follower_home,
    ):
        secret = await post(author, "followers only", visibility="private")
        # Even an event wrongly published to their channels must not carry it to them.
        async with state_of(app).db.write() as session:
            for channel in ("public", f"user:{stranger.id}"):
                publish(session, channel, "update", {"status_id": secret})
        marker = await post(friend, "for everyone")
        # Events arrive in order, so had the private one leaked it would come first.
        home = json.loads((await stranger_home.next())[1])
        public = json.loads((await stranger_public.next())[1])
        first = json.loads((await follower_home.next())[1])
    assert home["id"] == str(marker)
    assert public["id"] == str(marker)
    assert first["id"] == str(secret)
    assert first["visibility"] == "private"


async def test_blocked_account_never_reaches_blockers_public_stream(
    sse: httpx.AsyncClient, make_person: PersonFactory, post: Post, block: Relate
) -> None:
    troll = await make_person("troll")
    friend = await make_person("friend")
    reader = await make_person("reader")
    await block(reader, troll)
    async with open_stream(sse, reader, "public") as events:
        await post(troll, "you cannot see me")
        visible = await post(friend, "you can see me")
        event, data = await events.next()
    assert (event, json.loads(data)["id"]) == ("update", str(visible))


async def test_block_made_while_connected_holds_once_the_cache_refreshes(
    sse: httpx.AsyncClient, make_person: PersonFactory, post: Post, block: Relate
) -> None:
    troll = await make_person("troll")
    friend = await make_person("friend")
    reader = await make_person("reader")
    async with open_stream(sse, reader, "public") as events:
        before = await post(troll, "before the block")
        assert json.loads((await events.next())[1])["id"] == str(before)
        # The troll blocks the reader (blocks hold both ways).
        await block(troll, reader)
        await asyncio.sleep(0.3)  # past streaming_hidden_refresh
        await post(troll, "not for the reader")
        visible = await post(friend, "for the reader")
        _, data = await events.next()
    assert json.loads(data)["id"] == str(visible)


async def test_notification_stream_gets_follow_notification(
    sse: httpx.AsyncClient, alice: Person, bob: Person
) -> None:
    async with open_stream(sse, alice, "user/notification") as events:
        response = await bob.client.post(f"/api/v1/accounts/{alice.id}/follow")
        assert response.status_code == 200, response.text
        event, data = await events.next()
    assert event == "notification"
    notification = json.loads(data)
    assert notification["type"] == "follow"
    assert notification["account"]["id"] == bob.id


async def test_heartbeat_keeps_a_quiet_stream_open(sse: httpx.AsyncClient, alice: Person) -> None:
    async with open_stream(sse, alice, "public") as events:
        line_reader = events.lines
        first = await asyncio.wait_for(anext(line_reader), 5)
        second = await asyncio.wait_for(anext(line_reader), 5)
    assert first == ":)"
    assert second == ":thump"


async def test_streams_need_a_valid_token(sse: httpx.AsyncClient, alice: Person) -> None:
    anonymous = await sse.get("/api/v1/streaming/public")
    assert anonymous.status_code == 401
    assert anonymous.json() == {"error": "Missing access token"}
    wrong = await sse.get("/api/v1/streaming/user", headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401
    assert "error" in wrong.json()


async def test_unknown_stream_and_missing_parameters_are_refused(
    sse: httpx.AsyncClient, alice: Person
) -> None:
    unknown = await sse.get("/api/v1/streaming/everything", headers=alice.headers)
    assert unknown.status_code == 404
    no_tag = await sse.get("/api/v1/streaming/hashtag", headers=alice.headers)
    assert no_tag.status_code == 400
    assert no_tag.json() == {"error": "No tag for stream provided"}
    bad_list = await sse.get(
        "/api/v1/streaming/list", params={"list": "12345"}, headers=alice.headers
    )
    assert bad_list.status_code == 404


async def test_user_stream_needs_read_scope(
    sse: httpx.AsyncClient, make_person: PersonFactory
) -> None:
    writer = await make_person("writer", scopes=("write",))
    response = await sse.get("/api/v1/streaming/user", headers=writer.headers)
    assert response.status_code == 401
    assert response.json() == {"error": "Access token does not cover required scopes"}


async def test_list_stream_is_for_its_owner_only(
    sse: httpx.AsyncClient, alice: Person, bob: Person, carol: Person, post: Post, app: FastAPI
) -> None:
    from townsquare.ids import new_id
    from townsquare.timelines.models import ListMember, UserList

    list_id = new_id()
    async with state_of(app).db.write() as session:
        session.add(UserList(id=list_id, account_id=bob.account.id, title="friends"))
        await session.flush()
        session.add(ListMember(list_id=list_id, account_id=alice.account.id))
    others = await sse.get(
        "/api/v1/streaming/list", params={"list": str(list_id)}, headers=carol.headers
    )
    assert others.status_code == 404
    async with open_stream(sse, bob, "list", list=str(list_id)) as events:
        async with state_of(app).db.write() as session:
            status_id = await post(alice, "for the list")
            publish(session, f"list:{list_id}", "update", {"status_id": status_id})
        event, data = await events.next()
    assert (event, json.loads(data)["id"]) == ("update", str(status_id))


async def test_media_only_public_stream_skips_text_posts(
    sse: httpx.AsyncClient, alice: Person, bob: Person, post: Post, app: FastAPI
) -> None:
    state = state_of(app)
    async with open_stream(sse, bob, "public", only_media="true") as events:
        await post(alice, "just words")
        async with state.db.write() as session:
            picture = Status(
                id=new_id(),
                account_id=alice.account.id,
                text="a picture",
                content_html="<p>a picture</p>",
                visibility="public",
            )
            session.add(picture)
            await session.flush()
            session.add(
                MediaAttachment(
                    id=new_id(),
                    account_id=alice.account.id,
                    status_id=picture.id,
                    content_type="image/png",
                    file_name="picture.png",
                    thumb_name="picture-small.png",
                )
            )
            enqueue_fanout(session, picture)
        await run_pending_jobs(state, wait_seconds=WAIT)
        # The text post came first: the first event being the picture shows it was skipped.
        event, data = await events.next()
    assert (event, json.loads(data)["id"]) == ("update", str(picture.id))
