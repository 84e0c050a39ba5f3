"""Lists: creating, editing and deleting them, their members, and the list timeline."""

from __future__ import annotations

from tests.conftest import Person
from tests.timelines.conftest import Post, Relate, ids


async def _new_list(person: Person, title: str = "Friends", **extra: object) -> str:
    response = await person.client.post("/api/v1/lists", json={"title": title, **extra})
    assert response.status_code == 200, response.text
    return str(response.json()["id"])


async def test_create_show_update_delete(alice: Person) -> None:
    response = await alice.client.post(
        "/api/v1/lists", data={"title": "  Friends ", "replies_policy": "followed"}
    )
    assert response.status_code == 200, response.text
    created = response.json()
    assert created["title"] == "Friends"
    assert created["replies_policy"] == "followed"
    assert created["exclusive"] is False
    list_id = created["id"]
    assert isinstance(list_id, str)

    shown = await alice.client.get(f"/api/v1/lists/{list_id}")
    assert shown.json() == created
    assert (await alice.client.get("/api/v1/lists")).json() == [created]

    updated = await alice.client.put(
        f"/api/v1/lists/{list_id}", json={"title": "Close friends", "exclusive": True}
    )
    assert updated.status_code == 200
    assert updated.json()["title"] == "Close friends"
    assert updated.json()["exclusive"] is True
    assert updated.json()["replies_policy"] == "followed"

    deleted = await alice.client.delete(f"/api/v1/lists/{list_id}")
    assert deleted.status_code == 200
    assert (await alice.client.get(f"/api/v1/lists/{list_id}")).status_code == 404
    assert (await alice.client.get("/api/v1/lists")).json() == []


async def test_bad_list_input_is_refused(alice: Person) -> None:
    for body in ({}, {"title": "   "}, {"title": "x", "replies_policy": "everyone"}):
        response = await alice.client.post("/api/v1/lists", json=body)
        assert response.status_code == 422, body
        assert "error" in response.json()
    assert (await alice.client.get("/api/v1/lists")).json() == []
    assert (await alice.client.get("/api/v1/lists/not-a-number")).status_code == 404


async def test_other_peoples_lists_are_not_found(alice: Person, bob: Person) -> None:
    list_id = await _new_list(alice)
    assert (await bob.client.get(f"/api/v1/lists/{list_id}")).status_code == 404
    assert (
        await bob.client.put(f"/api/v1/lists/{list_id}", json={"title": "x"})
    ).status_code == 404
    assert (await bob.client.delete(f"/api/v1/lists/{list_id}")).status_code == 404
    assert (await bob.client.get(f"/api/v1/timelines/list/{list_id}")).status_code == 404
    assert (await alice.client.get(f"/api/v1/lists/{list_id}")).status_code == 200


async def test_members_must_be_followed(
    alice: Person, bob: Person, carol: Person, follow: Relate
) -> None:
    list_id = await _new_list(alice)
    await follow(alice, bob)
    refused = await alice.client.post(
        f"/api/v1/lists/{list_id}/accounts", data={"account_ids[]": [bob.id, carol.id]}
    )
    assert refused.status_code == 422
    members = await alice.client.get(f"/api/v1/lists/{list_id}/accounts")
    assert members.json() == []  # nothing was added, not even bob

    unknown = await alice.client.post(
        f"/api/v1/lists/{list_id}/accounts", data={"account_ids[]": "12345"}
    )
    assert unknown.status_code == 404

    added = await alice.client.post(
        f"/api/v1/lists/{list_id}/accounts", data={"account_ids[]": bob.id}
    )
    assert added.status_code == 200
    assert added.json() == {}
    members = await alice.client.get(f"/api/v1/lists/{list_id}/accounts")
    assert [account["id"] for account in members.json()] == [bob.id]
    everyone = await alice.client.get(f"/api/v1/lists/{list_id}/accounts", params={"limit": 0})
    assert [account["id"] for account in everyone.json()] == [bob.id]

    containing = await alice.client.get(f"/api/v1/accounts/{bob.id}/lists")
    assert [item["id"] for item in containing.json()] == [list_id]
    assert (await alice.client.get(f"/api/v1/accounts/{carol.id}/lists")).json() == []

    removed = await alice.client.request(
        "DELETE", f"/api/v1/lists/{list_id}/accounts", json={"account_ids": [bob.id]}
    )
    assert removed.status_code == 200
    assert (await alice.client.get(f"/api/v1/lists/{list_id}/accounts")).json() == []


async def test_list_timeline_shows_members_only(
    alice: Person, bob: Person, carol: Person, post: Post, follow: Relate
) -> None:
    await follow(alice, bob)
    await follow(alice, carol)
    list_id = await _new_list(alice, replies_policy="none")
    response = await alice.client.post(
        f"/api/v1/lists/{list_id}/accounts", json={"account_ids": [bob.id]}
    )
    assert response.status_code == 200

    from_bob = await post(bob, "bob here")
    private = await post(bob, "bob for friends", visibility="private")
    question = await post(carol, "carol asks")
    await post(bob, "reply to carol", in_reply_to=question)
    timeline = await alice.client.get(f"/api/v1/timelines/list/{list_id}")
    assert ids(timeline) == [private, from_bob]

    # An exclusive list takes its members out of the home timeline.
    await alice.client.put(f"/api/v1/lists/{list_id}", json={"exclusive": True})
    later = await post(bob, "only in the list")
    home = ids(await alice.client.get("/api/v1/timelines/home"))
    assert later not in home
    assert later in ids(await alice.client.get(f"/api/v1/timelines/list/{list_id}"))
