from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI

from tests.conftest import Person, PersonFactory
from townsquare.api.errors import ApiError
from townsquare.moderation import service
from townsquare.state import state_of


@pytest.fixture
async def mod(make_person: PersonFactory) -> Person:
    return await make_person("mod", role="moderator")


async def test_suspend_hides_everything_until_lifted(
    client: httpx.AsyncClient, alice: Person, bob: Person, mod: Person
) -> None:
    status = (await bob.client.post("/api/v1/statuses", data={"status": "visible"})).json()
    report = (await alice.client.post("/api/v1/reports", data={"account_id": bob.id})).json()
    action = await mod.client.post(
        f"/api/v1/admin/accounts/{bob.id}/action",
        data={"type": "suspend", "report_id": report["id"]},
    )
    assert action.status_code == 200

    assert (await bob.client.get("/api/v1/accounts/verify_credentials")).status_code == 403
    profile = (await client.get(f"/api/v1/accounts/{bob.id}")).json()
    assert profile["suspended"] is True
    assert (await alice.client.get(f"/api/v1/statuses/{status['id']}")).status_code == 404
    resolved = (await mod.client.get(f"/api/v1/admin/reports/{report['id']}")).json()
    assert resolved["action_taken"] is True

    lifted = await mod.client.post(f"/api/v1/admin/accounts/{bob.id}/unsuspend")
    assert lifted.status_code == 200
    assert lifted.json()["suspended"] is False
    assert (await bob.client.get("/api/v1/accounts/verify_credentials")).status_code == 200
    assert (await alice.client.get(f"/api/v1/statuses/{status['id']}")).status_code == 200


async def test_silence_sensitive_and_disable(bob: Person, mod: Person) -> None:
    for kind in ("silence", "sensitive"):
        response = await mod.client.post(
            f"/api/v1/admin/accounts/{bob.id}/action", data={"type": kind}
        )
        assert response.status_code == 200
    seen = (await mod.client.get(f"/api/v1/admin/accounts/{bob.id}")).json()
    assert seen["silenced"] is True and seen["sensitized"] is True
    assert seen["disabled"] is False

    disabled = await mod.client.post(
        f"/api/v1/admin/accounts/{bob.id}/action", data={"type": "disable"}
    )
    assert disabled.status_code == 200
    assert (await bob.client.get("/api/v1/accounts/verify_credentials")).status_code == 401


async def test_actions_that_are_refused(
    alice: Person, mod: Person, make_person: PersonFactory
) -> None:
    admin = await make_person("boss", role="admin")
    on_admin = await mod.client.post(
        f"/api/v1/admin/accounts/{admin.id}/action", data={"type": "suspend"}
    )
    assert on_admin.status_code == 403
    on_self = await mod.client.post(
        f"/api/v1/admin/accounts/{mod.id}/action", data={"type": "silence"}
    )
    assert on_self.status_code == 403
    unknown_type = await mod.client.post(
        f"/api/v1/admin/accounts/{alice.id}/action", data={"type": "delete"}
    )
    assert unknown_type.status_code == 422
    unknown_account = await mod.client.post(
        "/api/v1/admin/accounts/424242/action", data={"type": "silence"}
    )
    assert unknown_account.status_code == 404
    assert (await alice.client.get("/api/v1/accounts/verify_credentials")).status_code == 200


async def test_cli_services(app: FastAPI, client: httpx.AsyncClient, alice: Person) -> None:
    db = state_of(app).db
    async with db.write() as session:
        await service.set_verified(session, "alice", True)
        await service.promote(session, "alice", "moderator")
    profile = (await client.get(f"/api/v1/accounts/{alice.id}")).json()
    assert profile["verified"] is True
    assert {"id": "official", "name": "Official", "color": ""} in profile["roles"]
    assert (await alice.client.get("/api/v1/admin/reports")).status_code == 200

    async with db.write() as session:
        await service.suspend(session, "@alice")
    assert (await alice.client.get("/api/v1/accounts/verify_credentials")).status_code == 403
    async with db.write() as session:
        await service.unsuspend(session, "alice")
    assert (await alice.client.get("/api/v1/accounts/verify_credentials")).status_code == 200

    with pytest.raises(ApiError):
        async with db.write() as session:
            await service.suspend(session, "nobody")
    with pytest.raises(ApiError):
        async with db.write() as session:
            await service.promote(session, "alice", "emperor")


async def test_admin_account_list_filters(alice: Person, bob: Person, mod: Person) -> None:
    await mod.client.post(f"/api/v1/admin/accounts/{bob.id}/action", data={"type": "silence"})
    silenced = await mod.client.get("/api/v1/admin/accounts", params={"status": "silenced"})
    assert silenced.status_code == 200
    assert [a["username"] for a in silenced.json()] == ["bob"]
    by_name = await mod.client.get("/api/v1/admin/accounts", params={"username": "ali"})
    assert [a["account"]["id"] for a in by_name.json()] == [alice.id]
    everyone = await mod.client.get("/api/v1/admin/accounts", params={"limit": 2})
    assert len(everyone.json()) == 2
    assert 'rel="next"' in everyone.headers["link"]
    bad = await mod.client.get("/api/v1/admin/accounts", params={"status": "sleeping"})
    assert bad.status_code == 422
    assert (await alice.client.get("/api/v1/admin/accounts")).status_code == 403

    lifted = await mod.client.post(f"/api/v1/admin/accounts/{bob.id}/unsilence")
    assert lifted.json()["silenced"] is False
