from __future__ import annotations

import pytest

from tests.conftest import Person, PersonFactory


@pytest.fixture
async def mod(make_person: PersonFactory) -> Person:
    return await make_person("mod", role="moderator")


async def _post(person: Person, text: str = "hello") -> str:
    response = await person.client.post("/api/v1/statuses", data={"status": text})
    assert response.status_code == 200, response.text
    status_id: str = response.json()["id"]
    return status_id


async def test_report_reaches_moderators(alice: Person, bob: Person, mod: Person) -> None:
    status_id = await _post(bob, "spam spam spam")
    response = await alice.client.post(
        "/api/v1/reports",
        data={
            "account_id": bob.id,
            "status_ids[]": status_id,
            "comment": "This is spam",
            "category": "spam",
        },
    )
    assert response.status_code == 200, response.text
    report = response.json()
    assert report["target_account"]["id"] == bob.id
    assert report["status_ids"] == [status_id]
    assert report["category"] == "spam"
    assert report["action_taken"] is False

    notifications = (await mod.client.get("/api/v1/notifications")).json()
    assert [n["type"] for n in notifications] == ["admin.report"]
    assert (await bob.client.get("/api/v1/notifications")).json() == []


async def test_report_bad_input(alice: Person, bob: Person, carol: Person) -> None:
    carols = await _post(carol)
    cases = [
        ({"account_id": "123456789"}, 404),
        ({"account_id": "nope"}, 404),
        ({}, 422),
        ({"account_id": alice.id}, 422),
        ({"account_id": bob.id, "status_ids[]": carols}, 422),
        ({"account_id": bob.id, "category": "boring"}, 422),
        ({"account_id": bob.id, "comment": "x" * 1001}, 422),
        ({"account_id": bob.id, "rule_ids[]": "1"}, 422),
    ]
    for data, status in cases:
        response = await alice.client.post("/api/v1/reports", data=data)
        assert response.status_code == status, data


async def test_admin_endpoints_refuse_non_moderators(alice: Person, bob: Person) -> None:
    assert (await alice.client.get("/api/v1/admin/reports")).status_code == 403
    action = await alice.client.post(
        f"/api/v1/admin/accounts/{bob.id}/action", data={"type": "suspend"}
    )
    assert action.status_code == 403
    me = (await bob.client.get("/api/v1/accounts/verify_credentials")).status_code
    assert me == 200


async def test_moderator_reviews_and_resolves(alice: Person, bob: Person, mod: Person) -> None:
    status_id = await _post(bob, "rude words")
    report = (
        await alice.client.post(
            "/api/v1/reports", data={"account_id": bob.id, "status_ids[]": status_id}
        )
    ).json()
    listed = (await mod.client.get("/api/v1/admin/reports")).json()
    assert [r["id"] for r in listed] == [report["id"]]
    one = (await mod.client.get(f"/api/v1/admin/reports/{report['id']}")).json()
    assert one["account"]["username"] == "alice"
    assert one["target_account"]["account"]["username"] == "bob"
    assert [s["id"] for s in one["statuses"]] == [status_id]

    resolved = await mod.client.post(f"/api/v1/admin/reports/{report['id']}/resolve")
    assert resolved.status_code == 200
    assert resolved.json()["action_taken"] is True
    assert resolved.json()["action_taken_by_account"]["username"] == "mod"
    assert (await mod.client.get("/api/v1/admin/reports")).json() == []
    done = (await mod.client.get("/api/v1/admin/reports", params={"resolved": "true"})).json()
    assert [r["id"] for r in done] == [report["id"]]
    missing = await mod.client.get("/api/v1/admin/reports/12345")
    assert missing.status_code == 404
