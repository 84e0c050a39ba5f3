"""Blocks and mutes: what they end, what they hide, and that they hold both ways."""

from __future__ import annotations

from tests.conftest import Person
from tests.graph.conftest import Counts
from tests.graph.test_follow import relationship


async def test_block_ends_follows_both_ways(alice: Person, bob: Person, counts: Counts) -> None:
    await alice.client.post(f"/api/v1/accounts/{bob.id}/follow")
    await bob.client.post(f"/api/v1/accounts/{alice.id}/follow")
    assert await counts(alice.id) == (1, 1)

    response = await alice.client.post(f"/api/v1/accounts/{bob.id}/block")
    assert response.status_code == 200
    body = response.json()
    assert body["blocking"] is True
    assert body["following"] is False
    assert body["followed_by"] is False
    assert await counts(alice.id) == (0, 0)
    assert await counts(bob.id) == (0, 0)
    assert (await relationship(bob, alice))["blocked_by"] is True


async def test_blocked_account_cannot_follow_and_blocker_cannot_either(
    alice: Person, bob: Person, counts: Counts
) -> None:
    await alice.client.post(f"/api/v1/accounts/{bob.id}/block")
    assert (await bob.client.post(f"/api/v1/accounts/{alice.id}/follow")).status_code == 403
    assert (await alice.client.post(f"/api/v1/accounts/{bob.id}/follow")).status_code == 403
    assert await counts(alice.id) == (0, 0)


async def test_unblock_allows_following_again(alice: Person, bob: Person) -> None:
    await alice.client.post(f"/api/v1/accounts/{bob.id}/block")
    unblocked = await alice.client.post(f"/api/v1/accounts/{bob.id}/unblock")
    assert unblocked.status_code == 200
    assert unblocked.json()["blocking"] is False
    followed = await bob.client.post(f"/api/v1/accounts/{alice.id}/follow")
    assert followed.status_code == 200
    assert followed.json()["following"] is True


async def test_block_cancels_pending_request(make_person, alice: Person) -> None:  # type: ignore[no-untyped-def]
    dora = await make_person("dora", locked=True)
    await alice.client.post(f"/api/v1/accounts/{dora.id}/follow")
    await dora.client.post(f"/api/v1/accounts/{alice.id}/block")
    assert (await dora.client.get("/api/v1/follow_requests")).json() == []
    assert (await relationship(alice, dora))["requested"] is False


async def test_blocks_are_listed_for_the_blocker_only(alice: Person, bob: Person) -> None:
    await alice.client.post(f"/api/v1/accounts/{bob.id}/block")
    listed = await alice.client.get("/api/v1/blocks")
    assert listed.status_code == 200
    assert [a["id"] for a in listed.json()] == [bob.id]
    assert (await bob.client.get("/api/v1/blocks")).json() == []


async def test_blocking_yourself_is_refused(alice: Person) -> None:
    assert (await alice.client.post(f"/api/v1/accounts/{alice.id}/block")).status_code == 403


async def test_mute_with_and_without_notifications(alice: Person, bob: Person) -> None:
    response = await alice.client.post(f"/api/v1/accounts/{bob.id}/mute")
    assert response.status_code == 200
    assert response.json()["muting"] is True
    assert response.json()["muting_notifications"] is True
    assert response.json()["muting_expires_at"] is None

    again = await alice.client.post(
        f"/api/v1/accounts/{bob.id}/mute", json={"notifications": False, "duration": 3600}
    )
    assert again.json()["muting"] is True
    assert again.json()["muting_notifications"] is False
    assert again.json()["muting_expires_at"].endswith("Z")

    listed = (await alice.client.get("/api/v1/mutes")).json()
    assert [a["id"] for a in listed] == [bob.id]
    assert listed[0]["mute_expires_at"] == again.json()["muting_expires_at"]

    unmuted = await alice.client.post(f"/api/v1/accounts/{bob.id}/unmute")
    assert unmuted.json()["muting"] is False
    assert (await alice.client.get("/api/v1/mutes")).json() == []


async def test_mute_rejects_bad_duration(alice: Person, bob: Person) -> None:
    response = await alice.client.post(f"/api/v1/accounts/{bob.id}/mute", json={"duration": -5})
    assert response.status_code == 422
    assert (await relationship(alice, bob))["muting"] is False


async def test_mute_keeps_the_follow(alice: Person, bob: Person) -> None:
    await alice.client.post(f"/api/v1/accounts/{bob.id}/follow")
    muted = await alice.client.post(f"/api/v1/accounts/{bob.id}/mute")
    assert muted.json()["following"] is True


async def test_private_note_is_seen_only_by_its_writer(alice: Person, bob: Person) -> None:
    saved = await alice.client.post(
        f"/api/v1/accounts/{bob.id}/note", json={"comment": "met at the fair"}
    )
    assert saved.status_code == 200
    assert saved.json()["note"] == "met at the fair"
    assert (await relationship(alice, bob))["note"] == "met at the fair"
    assert (await relationship(bob, alice))["note"] == ""
    cleared = await alice.client.post(f"/api/v1/accounts/{bob.id}/note", json={"comment": ""})
    assert cleared.json()["note"] == ""
