"""The public and hashtag timelines: public statuses only, for anyone."""

from __future__ import annotations

import httpx
from fastapi import FastAPI

from tests.conftest import Person
from tests.timelines.conftest import Post, ids
from townsquare.ids import new_id
from townsquare.media.models import MediaAttachment
from townsquare.state import state_of


async def test_public_timeline_has_public_originals_only(
    client: httpx.AsyncClient, alice: Person, bob: Person, post: Post
) -> None:
    public = await post(alice, "hello world")
    await post(alice, "quiet", visibility="unlisted")
    await post(alice, "friends", visibility="private")
    await post(alice, "psst", visibility="direct", mentions=[bob])
    await post(bob, "", reblog_of=public)
    await post(bob, "replying", in_reply_to=public)
    own_thread = await post(alice, "and another thing", in_reply_to=public)

    anonymous = await client.get("/api/v1/timelines/public")
    assert ids(anonymous) == [own_thread, public]
    assert anonymous.json()[1]["content"] == "<p>hello world</p>"
    assert ids(await bob.client.get("/api/v1/timelines/public")) == [own_thread, public]
    local = await client.get("/api/v1/timelines/public", params={"local": "true"})
    assert ids(local) == [own_thread, public]
    remote = await client.get("/api/v1/timelines/public", params={"remote": "true"})
    assert ids(remote) == []


async def test_public_timeline_only_media(
    app: FastAPI, client: httpx.AsyncClient, alice: Person, post: Post
) -> None:
    await post(alice, "just words")
    with_picture = await post(alice, "look")
    async with state_of(app).db.write() as session:
        session.add(
            MediaAttachment(
                id=new_id(),
                account_id=alice.account.id,
                status_id=with_picture,
                content_type="image/png",
                file_name="a.png",
                thumb_name="a-small.png",
            )
        )
    response = await client.get("/api/v1/timelines/public", params={"only_media": "true"})
    assert ids(response) == [with_picture]


async def test_blocked_authors_are_left_out_for_the_viewer(
    client: httpx.AsyncClient, alice: Person, bob: Person, post: Post
) -> None:
    from_alice = await post(alice, "hi")
    response = await bob.client.post(f"/api/v1/accounts/{alice.id}/block")
    assert response.status_code == 200, response.text
    assert ids(await bob.client.get("/api/v1/timelines/public")) == []
    assert ids(await client.get("/api/v1/timelines/public")) == [from_alice]


async def test_bad_flags_are_refused(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/v1/timelines/public", params={"local": "perhaps"})
    assert response.status_code == 422
    assert "local" in response.json()["error"]


async def test_hashtag_timeline(client: httpx.AsyncClient, alice: Person, post: Post) -> None:
    cats = await post(alice, "#cats", tags=["Cats"])
    dogs = await post(alice, "#dogs", tags=["dogs"])
    both = await post(alice, "#cats #dogs", tags=["cats", "dogs"])
    await post(alice, "#cats secretly", visibility="private", tags=["cats"])
    await post(alice, "#cats quietly", visibility="unlisted", tags=["cats"])
    await post(alice, "", reblog_of=cats)

    async def tag(name: str, **params: str | int) -> list[int]:
        return ids(await client.get(f"/api/v1/timelines/tag/{name}", params=params))

    assert await tag("cats") == [both, cats]
    assert await tag("CATS") == [both, cats]
    assert await tag("cats", **{"any[]": "dogs"}) == [both, dogs, cats]
    assert await tag("cats", **{"all[]": "dogs"}) == [both]
    assert await tag("cats", **{"none[]": "dogs"}) == [cats]
    assert await tag("cats", **{"all[]": "birds"}) == []
    assert await tag("birds") == []
    assert await tag("cats", limit=1) == [both]


async def test_too_many_hashtags_are_refused(client: httpx.AsyncClient) -> None:
    names = [f"tag{n}" for n in range(21)]
    response = await client.get("/api/v1/timelines/tag/cats", params={"any[]": names})
    assert response.status_code == 422
    assert "any" in response.json()["error"]
