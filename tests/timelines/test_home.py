"""GET /api/v1/timelines/home: what people see, in what order, page by page."""

from __future__ import annotations

import re

import httpx
from fastapi import FastAPI
from sqlalchemy import delete, func, select

from tests.conftest import Person
from tests.timelines.conftest import Post, Relate, ids
from townsquare.graph.models import Follow
from townsquare.jobs.runner import run_pending_jobs
from townsquare.state import state_of
from townsquare.timelines.models import HomeFeedEntry


async def home(person: Person, **params: str | int) -> list[int]:
    return ids(await person.client.get("/api/v1/timelines/home", params=params))


async def test_home_shows_own_and_followed_statuses_newest_first(
    alice: Person, bob: Person, carol: Person, post: Post, follow: Relate
) -> None:
    await follow(bob, alice)
    first = await post(alice, "first")
    mine = await post(bob, "mine")
    stranger = await post(carol, "not followed")
    second = await post(alice, "second", visibility="private")

    timeline = await home(bob)
    assert timeline == [second, mine, first]
    assert stranger not in timeline

    response = await bob.client.get("/api/v1/timelines/home")
    body = response.json()
    assert body[0]["content"] == "<p>second</p>"
    assert body[0]["account"]["id"] == alice.id
    assert body[0]["visibility"] == "private"


async def test_private_statuses_of_people_not_followed_stay_hidden(
    alice: Person, bob: Person, carol: Person, post: Post, follow: Relate
) -> None:
    await follow(bob, alice)
    await post(carol, "followers only", visibility="private")
    await post(alice, "a direct word", visibility="direct", mentions=[bob])
    assert await home(bob) == []


async def test_muting_or_blocking_hides_what_is_already_in_the_feed(
    alice: Person, bob: Person, carol: Person, post: Post, follow: Relate
) -> None:
    await follow(bob, alice)
    await follow(bob, carol)
    from_alice = await post(alice, "from alice")
    from_carol = await post(carol, "from carol")
    reblog = await post(carol, "", reblog_of=from_alice)
    assert set(await home(bob)) >= {from_alice, from_carol}

    response = await bob.client.post(f"/api/v1/accounts/{alice.id}/mute")
    assert response.status_code == 200, response.text
    timeline = await home(bob)
    assert from_alice not in timeline
    assert reblog not in timeline  # a reblog of a muted account's status is hidden as well
    assert from_carol in timeline

    response = await carol.client.post(f"/api/v1/accounts/{bob.id}/block")
    assert response.status_code == 200, response.text
    assert from_carol not in await home(bob)


async def test_after_an_unfollow_private_statuses_disappear(
    app: FastAPI, alice: Person, bob: Person, post: Post, follow: Relate
) -> None:
    await follow(bob, alice)
    private = await post(alice, "friends only", visibility="private")
    assert await home(bob) == [private]
    async with state_of(app).db.write() as session:
        await session.execute(delete(Follow).where(Follow.account_id == bob.account.id))
    assert await home(bob) == []


async def test_paging_with_max_id_since_id_min_id_and_link(
    alice: Person, bob: Person, post: Post, follow: Relate
) -> None:
    await follow(bob, alice)
    posted = [await post(alice, f"post {n}") for n in range(5)]
    newest_first = list(reversed(posted))

    response = await bob.client.get("/api/v1/timelines/home", params={"limit": 2})
    assert ids(response) == newest_first[:2]
    link = response.headers["link"]
    next_url = re.search(r'<([^>]+)>; rel="next"', link)
    prev_url = re.search(r'<([^>]+)>; rel="prev"', link)
    assert next_url and f"max_id={newest_first[1]}" in next_url.group(1)
    assert prev_url and f"min_id={newest_first[0]}" in prev_url.group(1)

    following = await bob.client.get(next_url.group(1))
    assert ids(following) == newest_first[2:4]

    assert await home(bob, max_id=posted[2]) == [posted[1], posted[0]]
    assert await home(bob, since_id=posted[2]) == [posted[4], posted[3]]
    # min_id returns the page just after it (oldest of the newer ones), still newest first.
    assert await home(bob, min_id=posted[0], limit=2) == [posted[2], posted[1]]
    assert await home(bob, since_id=posted[0], limit=2) == [posted[4], posted[3]]


async def test_bad_paging_parameters_are_refused(bob: Person) -> None:
    for params in (
        {"max_id": "abc"},
        {"since_id": "1.5"},
        {"min_id": str(2**64)},
        {"max_id": "-3"},
        {"limit": "many"},
    ):
        response = await bob.client.get("/api/v1/timelines/home", params=params)
        assert response.status_code == 400, (params, response.text)
        assert "error" in response.json()
    # A limit out of range is clamped, as Mastodon does.
    response = await bob.client.get("/api/v1/timelines/home", params={"limit": "1000"})
    assert response.status_code == 200
    head = await bob.client.head("/api/v1/timelines/home")
    assert head.status_code == 200


async def test_home_needs_a_user(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/v1/timelines/home")
    assert response.status_code == 401


async def test_a_big_author_is_pulled_into_home_without_fanout_rows(
    app: FastAPI, alice: Person, bob: Person, carol: Person, post: Post, follow: Relate
) -> None:
    state = state_of(app)
    state.settings.fanout_pull_threshold = 2
    await follow(bob, alice)
    await follow(carol, alice)
    await follow(bob, carol)
    from_carol = await post(carol, "from carol")
    big = await post(alice, "to everyone")
    private = await post(alice, "followers only", visibility="private")
    reply_to_carol = await post(alice, "hello", in_reply_to=from_carol)

    async with state.db.read() as session:
        rows = await session.scalar(
            select(func.count())
            .select_from(HomeFeedEntry)
            .where(HomeFeedEntry.account_id == bob.account.id)
        )
    assert rows == 1  # only carol's status was written to bob's feed
    assert await home(bob) == [reply_to_carol, private, big, from_carol]
    assert await home(bob, limit=2) == [reply_to_carol, private]
    assert await home(bob, max_id=private) == [big, from_carol]
    assert await home(bob, min_id=from_carol, limit=1) == [big]

    response = await bob.client.post(f"/api/v1/accounts/{alice.id}/mute")
    assert response.status_code == 200, response.text
    assert await home(bob) == [from_carol]


async def test_big_authors_interleave_with_a_full_feed_page(
    app: FastAPI, alice: Person, bob: Person, carol: Person, post: Post, follow: Relate
) -> None:
    # When the feed alone fills the page, the pull of big authors is bounded by the page's
    # edge: what lies beyond it in either direction must still come in its turn.
    state_of(app).settings.fanout_pull_threshold = 2
    await follow(bob, alice)
    await follow(carol, alice)
    await follow(bob, carol)
    first_carol = await post(carol, "c1")
    first_alice = await post(alice, "a1")
    second_carol = await post(carol, "c2")
    second_alice = await post(alice, "a2")
    third_carol = await post(carol, "c3")

    assert await home(bob, limit=2) == [third_carol, second_alice]
    assert await home(bob, limit=3) == [third_carol, second_alice, second_carol]
    assert await home(bob, max_id=second_carol, limit=1) == [first_alice]
    assert await home(bob, min_id=first_carol, limit=2) == [second_carol, first_alice]
    assert await home(bob, since_id=second_carol, limit=1) == [third_carol]


async def test_following_someone_brings_their_recent_statuses(
    app: FastAPI, alice: Person, bob: Person, post: Post
) -> None:
    older = await post(alice, "before the follow")
    response = await bob.client.post(f"/api/v1/accounts/{alice.id}/follow")
    assert response.status_code == 200, response.text
    await run_pending_jobs(state_of(app))
    assert await home(bob) == [older]
    later = await post(alice, "after the follow")
    assert await home(bob) == [later, older]


async def test_followed_hashtags_bring_public_statuses_home(
    alice: Person, bob: Person, carol: Person, post: Post, mute: Relate
) -> None:
    response = await carol.client.post("/api/v1/tags/cats/follow")
    assert response.status_code == 200, response.text
    tagged = await post(alice, "#cats", tags=["cats"])
    await post(alice, "#cats, privately", visibility="private", tags=["cats"])
    await post(alice, "#dogs", tags=["dogs"])
    await mute(carol, bob)
    await post(bob, "#cats from a muted account", tags=["cats"])
    assert await home(carol) == [tagged]

    response = await carol.client.post("/api/v1/tags/cats/unfollow")
    assert response.status_code == 200, response.text
    assert await home(carol) == []


async def test_members_of_an_exclusive_list_leave_home(
    alice: Person, bob: Person, post: Post, follow: Relate
) -> None:
    await follow(alice, bob)
    earlier = await post(bob, "before the list")
    created = await alice.client.post("/api/v1/lists", json={"title": "Bob", "exclusive": True})
    list_id = created.json()["id"]
    response = await alice.client.post(
        f"/api/v1/lists/{list_id}/accounts", json={"account_ids": [bob.id]}
    )
    assert response.status_code == 200, response.text
    assert earlier not in await home(alice)
    await alice.client.put(f"/api/v1/lists/{list_id}", json={"exclusive": False})
    assert earlier in await home(alice)


async def test_the_readers_own_marks_show_on_the_home_timeline(
    app: FastAPI, alice: Person, bob: Person, carol: Person, follow: Relate
) -> None:
    await follow(bob, alice)

    async def say(person: Person, text: str) -> str:
        response = await person.client.post("/api/v1/statuses", data={"status": text})
        assert response.status_code == 200, response.text
        return str(response.json()["id"])

    liked = await say(alice, "liked by bob")
    boosted = await say(alice, "boosted by bob")
    others = await say(alice, "liked and boosted by carol only")
    plain = await say(alice, "left alone")
    mine = await say(bob, "pinned by bob")
    for action, who, status in (
        ("favourite", bob, liked),
        ("reblog", bob, boosted),
        ("favourite", carol, others),
        ("reblog", carol, others),
        ("pin", bob, mine),
    ):
        response = await who.client.post(f"/api/v1/statuses/{status}/{action}")
        assert response.status_code == 200, response.text
    await run_pending_jobs(state_of(app))

    response = await bob.client.get("/api/v1/timelines/home")
    marks: dict[str, tuple[bool, bool, bool]] = {}
    for entity in response.json():
        for shown in (entity, entity["reblog"]):
            if shown is not None:
                marks[shown["id"]] = (shown["favourited"], shown["reblogged"], shown["pinned"])
    assert marks[liked] == (True, False, False)
    assert marks[boosted] == (False, True, False)
    assert marks[others] == (False, False, False)
    assert marks[plain] == (False, False, False)
    assert marks[mine] == (False, False, True)
