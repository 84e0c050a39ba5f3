"""/api/v2/notifications: favourites of one status and new followers fold into groups."""

from __future__ import annotations

from tests.conftest import Person
from tests.notifications.test_notifications import post


async def test_favourites_of_one_status_are_grouped(
    alice: Person, bob: Person, carol: Person
) -> None:
    status = await post(alice, "a fine day")
    for fan in (bob, carol):
        liked = await fan.client.post(f"/api/v1/statuses/{status['id']}/favourite")
        assert liked.status_code == 200
    await bob.client.post(f"/api/v1/accounts/{alice.id}/follow")
    await post(carol, "@alice look")

    response = await alice.client.get("/api/v2/notifications")
    assert response.status_code == 200
    body = response.json()
    groups = body["notification_groups"]
    assert [g["type"] for g in groups] == ["mention", "follow", "favourite"]
    favourites = groups[2]
    assert favourites["notifications_count"] == 2
    assert favourites["status_id"] == status["id"]
    assert set(favourites["sample_account_ids"]) == {bob.id, carol.id}
    assert groups[0]["group_key"].startswith("ungrouped-")
    assert {a["id"] for a in body["accounts"]} == {bob.id, carol.id}
    assert status["id"] in {s["id"] for s in body["statuses"]}

    # The v1 entity names the same group.
    v1 = (await alice.client.get("/api/v1/notifications")).json()
    assert {n["group_key"] for n in v1 if n["type"] == "favourite"} == {favourites["group_key"]}

    key = favourites["group_key"]
    shown = await alice.client.get(f"/api/v2/notifications/{key}")
    assert shown.status_code == 200
    assert shown.json()["notification_groups"][0]["notifications_count"] == 2
    accounts = await alice.client.get(f"/api/v2/notifications/{key}/accounts")
    assert {a["id"] for a in accounts.json()} == {bob.id, carol.id}

    dismissed = await alice.client.post(f"/api/v2/notifications/{key}/dismiss")
    assert dismissed.status_code == 200
    left = (await alice.client.get("/api/v2/notifications")).json()["notification_groups"]
    assert [g["type"] for g in left] == ["mention", "follow"]


async def test_grouping_can_be_turned_off(alice: Person, bob: Person, carol: Person) -> None:
    status = await post(alice, "again")
    await bob.client.post(f"/api/v1/statuses/{status['id']}/favourite")
    await carol.client.post(f"/api/v1/statuses/{status['id']}/favourite")
    response = await alice.client.get("/api/v2/notifications", params={"grouped_types[]": "reblog"})
    groups = response.json()["notification_groups"]
    assert [g["notifications_count"] for g in groups] == [1, 1]


async def test_groups_belong_to_their_recipient(alice: Person, bob: Person) -> None:
    await bob.client.post(f"/api/v1/accounts/{alice.id}/follow")
    [group] = (await alice.client.get("/api/v2/notifications")).json()["notification_groups"]
    key = group["group_key"]
    assert (await bob.client.get(f"/api/v2/notifications/{key}")).status_code == 404
    assert (await bob.client.post(f"/api/v2/notifications/{key}/dismiss")).status_code == 404
    assert (await alice.client.get("/api/v2/notifications/nonsense-x")).status_code == 404
    assert (await alice.client.get("/api/v2/notifications/unread_count")).json() == {"count": 1}
