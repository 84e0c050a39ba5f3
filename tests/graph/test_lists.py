"""Followers and following lists, relationships for several accounts, followed hashtags."""

from __future__ import annotations

import re

from tests.conftest import Person, PersonFactory


async def test_followers_and_following_page_with_link_headers(
    make_person: PersonFactory, alice: Person
) -> None:
    fans = [await make_person(f"fan{i}") for i in range(5)]
    for fan in fans:
        assert (await fan.client.post(f"/api/v1/accounts/{alice.id}/follow")).status_code == 200

    first = await alice.client.get(f"/api/v1/accounts/{alice.id}/followers", params={"limit": 2})
    assert first.status_code == 200
    # Newest followers first.
    assert [a["id"] for a in first.json()] == [fans[4].id, fans[3].id]
    next_url = re.search(r'<([^>]+)>; rel="next"', first.headers["link"])
    assert next_url is not None
    second = await alice.client.get(next_url.group(1))
    assert [a["id"] for a in second.json()] == [fans[2].id, fans[1].id]

    following = await alice.client.get(f"/api/v1/accounts/{fans[0].id}/following")
    assert [a["id"] for a in following.json()] == [alice.id]
    assert following.json()[0]["username"] == "alice"


async def test_follower_lists_are_public(client, alice: Person, bob: Person) -> None:  # type: ignore[no-untyped-def]
    await bob.client.post(f"/api/v1/accounts/{alice.id}/follow")
    response = await client.get(f"/api/v1/accounts/{alice.id}/followers")
    assert response.status_code == 200
    assert [a["id"] for a in response.json()] == [bob.id]


async def test_follower_lists_hide_blocked_accounts(
    alice: Person, bob: Person, carol: Person
) -> None:
    await bob.client.post(f"/api/v1/accounts/{alice.id}/follow")
    await carol.client.post(f"/api/v1/accounts/{alice.id}/follow")
    await carol.client.post(f"/api/v1/accounts/{bob.id}/block")
    seen_by_carol = await carol.client.get(f"/api/v1/accounts/{alice.id}/followers")
    assert [a["id"] for a in seen_by_carol.json()] == [carol.id]
    # Someone who blocked the viewer shows the viewer nothing of their lists.
    await alice.client.post(f"/api/v1/accounts/{carol.id}/block")
    assert (await carol.client.get(f"/api/v1/accounts/{alice.id}/following")).json() == []


async def test_lists_of_unknown_account_are_not_found(alice: Person) -> None:
    assert (await alice.client.get("/api/v1/accounts/999/followers")).status_code == 404


async def test_relationships_for_several_ids(alice: Person, bob: Person, carol: Person) -> None:
    await alice.client.post(f"/api/v1/accounts/{bob.id}/follow")
    response = await alice.client.get(
        "/api/v1/accounts/relationships",
        params=[("id[]", bob.id), ("id[]", carol.id), ("id[]", "999"), ("id[]", "x")],
    )
    assert response.status_code == 200
    body = response.json()
    assert [r["id"] for r in body] == [bob.id, carol.id]
    assert body[0]["following"] is True
    assert body[1]["following"] is False
    expected_keys = {
        "id", "following", "showing_reblogs", "notifying", "languages", "followed_by",
        "blocking", "blocked_by", "muting", "muting_notifications", "requested",
        "requested_by", "domain_blocking", "endorsed", "note",
    }  # fmt: skip
    assert expected_keys <= set(body[0])


async def test_familiar_followers(alice: Person, bob: Person, carol: Person) -> None:
    await alice.client.post(f"/api/v1/accounts/{bob.id}/follow")
    await bob.client.post(f"/api/v1/accounts/{carol.id}/follow")
    response = await alice.client.get(
        "/api/v1/accounts/familiar_followers", params={"id[]": carol.id}
    )
    assert response.status_code == 200
    [entry] = response.json()
    assert entry["id"] == carol.id
    assert [a["id"] for a in entry["accounts"]] == [bob.id]


async def test_follow_and_unfollow_a_hashtag(alice: Person) -> None:
    followed = await alice.client.post("/api/v1/tags/Gardening/follow")
    assert followed.status_code == 200
    assert followed.json()["name"] == "Gardening"
    assert followed.json()["following"] is True

    shown = await alice.client.get("/api/v1/tags/gardening")
    assert shown.json()["following"] is True
    assert [t["name"] for t in (await alice.client.get("/api/v1/followed_tags")).json()] == [
        "Gardening"
    ]

    unfollowed = await alice.client.post("/api/v1/tags/gardening/unfollow")
    assert unfollowed.json()["following"] is False
    assert (await alice.client.get("/api/v1/followed_tags")).json() == []


async def test_bad_and_unknown_hashtags(alice: Person) -> None:
    assert (await alice.client.get("/api/v1/tags/nosuchtag")).status_code == 404
    assert (await alice.client.post("/api/v1/tags/12345/follow")).status_code == 404
    assert (await alice.client.post("/api/v1/tags/no-dash/follow")).status_code == 404


async def test_endorsements_are_empty(alice: Person) -> None:
    response = await alice.client.get("/api/v1/endorsements")
    assert response.status_code == 200
    assert response.json() == []
