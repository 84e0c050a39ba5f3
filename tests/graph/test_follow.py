"""Following, unfollowing, locked accounts and follow requests."""

from __future__ import annotations

import asyncio

from sqlalchemy import func, select

from tests.conftest import Person, PersonFactory
from tests.graph.conftest import Counts
from townsquare.notifications.models import Notification
from townsquare.state import state_of


async def relationship(viewer: Person, other: Person) -> dict[str, object]:
    response = await viewer.client.get("/api/v1/accounts/relationships", params={"id[]": other.id})
    assert response.status_code == 200
    [entry] = response.json()
    assert isinstance(entry, dict)
    return entry


async def test_follow_shows_in_both_relationships_and_counts(
    alice: Person, bob: Person, counts: Counts
) -> None:
    response = await alice.client.post(f"/api/v1/accounts/{bob.id}/follow")
    assert response.status_code == 200
    body = response.json()
    assert body["id"] == bob.id
    assert body["following"] is True
    assert body["showing_reblogs"] is True
    assert body["requested"] is False

    assert (await relationship(bob, alice))["followed_by"] is True
    assert await counts(alice.id) == (0, 1)
    assert await counts(bob.id) == (1, 0)


async def test_follow_twice_counts_once_and_updates_options(
    alice: Person, bob: Person, counts: Counts
) -> None:
    await alice.client.post(f"/api/v1/accounts/{bob.id}/follow")
    again = await alice.client.post(
        f"/api/v1/accounts/{bob.id}/follow",
        json={"reblogs": False, "notify": True, "languages": ["en", "de"]},
    )
    assert again.status_code == 200
    body = again.json()
    assert body["following"] is True
    assert body["showing_reblogs"] is False
    assert body["notifying"] is True
    assert body["languages"] == ["en", "de"]
    assert await counts(bob.id) == (1, 0)


async def test_concurrent_follows_keep_counts_exact(
    alice: Person, bob: Person, counts: Counts
) -> None:
    responses = await asyncio.gather(
        *(alice.client.post(f"/api/v1/accounts/{bob.id}/follow") for _ in range(8))
    )
    assert all(r.status_code == 200 for r in responses)
    assert await counts(bob.id) == (1, 0)
    assert await counts(alice.id) == (0, 1)


async def test_unfollow_restores_counts(alice: Person, bob: Person, counts: Counts) -> None:
    await alice.client.post(f"/api/v1/accounts/{bob.id}/follow")
    response = await alice.client.post(f"/api/v1/accounts/{bob.id}/unfollow")
    assert response.status_code == 200
    assert response.json()["following"] is False
    assert await counts(bob.id) == (0, 0)
    assert await counts(alice.id) == (0, 0)
    # Unfollowing again is harmless.
    again = await alice.client.post(f"/api/v1/accounts/{bob.id}/unfollow")
    assert again.status_code == 200
    assert await counts(bob.id) == (0, 0)


async def test_following_yourself_is_refused(alice: Person) -> None:
    response = await alice.client.post(f"/api/v1/accounts/{alice.id}/follow")
    assert response.status_code == 403
    assert "error" in response.json()


async def test_following_unknown_account_is_not_found(alice: Person) -> None:
    assert (await alice.client.post("/api/v1/accounts/12345/follow")).status_code == 404
    assert (await alice.client.post("/api/v1/accounts/nonsense/follow")).status_code == 404


async def test_bad_follow_options_are_rejected(alice: Person, bob: Person, counts: Counts) -> None:
    response = await alice.client.post(
        f"/api/v1/accounts/{bob.id}/follow", json={"reblogs": "perhaps"}
    )
    assert response.status_code == 422
    assert await counts(bob.id) == (0, 0)


async def test_follow_needs_a_token(alice: Person, bob: Person, client) -> None:  # type: ignore[no-untyped-def]
    response = await client.post(f"/api/v1/accounts/{bob.id}/follow")
    assert response.status_code == 401


async def test_locked_account_gets_a_request_and_authorizes_it(
    make_person: PersonFactory, alice: Person, counts: Counts
) -> None:
    dora = await make_person("dora", locked=True)
    response = await alice.client.post(f"/api/v1/accounts/{dora.id}/follow")
    assert response.status_code == 200
    assert response.json()["following"] is False
    assert response.json()["requested"] is True
    assert await counts(dora.id) == (0, 0)
    assert (await relationship(dora, alice))["requested_by"] is True

    requests = await dora.client.get("/api/v1/follow_requests")
    assert requests.status_code == 200
    assert [a["id"] for a in requests.json()] == [alice.id]

    authorized = await dora.client.post(f"/api/v1/follow_requests/{alice.id}/authorize")
    assert authorized.status_code == 200
    assert authorized.json()["followed_by"] is True
    assert authorized.json()["requested_by"] is False
    assert (await relationship(alice, dora))["following"] is True
    assert await counts(dora.id) == (1, 0)
    assert (await dora.client.get("/api/v1/follow_requests")).json() == []

    # The request is gone: authorizing it again finds nothing.
    again = await dora.client.post(f"/api/v1/follow_requests/{alice.id}/authorize")
    assert again.status_code == 404


async def test_rejected_request_leaves_no_follow(
    make_person: PersonFactory, alice: Person, counts: Counts
) -> None:
    dora = await make_person("dora", locked=True)
    await alice.client.post(f"/api/v1/accounts/{dora.id}/follow")
    rejected = await dora.client.post(f"/api/v1/follow_requests/{alice.id}/reject")
    assert rejected.status_code == 200
    assert rejected.json()["requested_by"] is False
    after = await relationship(alice, dora)
    assert after["following"] is False
    assert after["requested"] is False
    assert await counts(dora.id) == (0, 0)


async def test_request_can_be_withdrawn_by_unfollowing(
    make_person: PersonFactory, alice: Person, app
) -> None:  # type: ignore[no-untyped-def]
    dora = await make_person("dora", locked=True)
    await alice.client.post(f"/api/v1/accounts/{dora.id}/follow")
    await alice.client.post(f"/api/v1/accounts/{dora.id}/unfollow")
    assert (await relationship(alice, dora))["requested"] is False
    async with state_of(app).db.read() as session:
        left = await session.scalar(
            select(func.count())
            .select_from(Notification)
            .where(Notification.account_id == dora.account.id)
        )
    assert left == 0


async def test_remove_from_followers(alice: Person, bob: Person, counts: Counts) -> None:
    await alice.client.post(f"/api/v1/accounts/{bob.id}/follow")
    response = await bob.client.post(f"/api/v1/accounts/{alice.id}/remove_from_followers")
    assert response.status_code == 200
    assert response.json()["followed_by"] is False
    assert (await relationship(alice, bob))["following"] is False
    assert await counts(bob.id) == (0, 0)
    assert await counts(alice.id) == (0, 0)


async def test_unlocking_lets_waiting_followers_in(
    make_person: PersonFactory, alice: Person, bob: Person, app, counts: Counts
) -> None:  # type: ignore[no-untyped-def]
    from townsquare.graph.service import accept_pending_requests

    dora = await make_person("dora", locked=True)
    await alice.client.post(f"/api/v1/accounts/{dora.id}/follow")
    await bob.client.post(f"/api/v1/accounts/{dora.id}/follow")
    async with state_of(app).db.write() as session:
        assert await accept_pending_requests(session, dora.account.id) == 2
    assert (await relationship(alice, dora))["following"] is True
    assert (await relationship(bob, dora))["following"] is True
    assert await counts(dora.id) == (2, 0)
