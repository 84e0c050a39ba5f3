from __future__ import annotations

from typing import Any

import httpx

from tests.conftest import Person
from townsquare.config import Settings

GOOD = {
    "username": "dora",
    "email": "dora@example.test",
    "password": "a long enough password",
    "agreement": "true",
    "locale": "en",
}


async def _sign_up(client: httpx.AsyncClient, token: str, **changes: Any) -> httpx.Response:
    data = {**GOOD, **changes}
    data = {k: v for k, v in data.items() if v is not None}
    return await client.post(
        "/api/v1/accounts", data=data, headers={"Authorization": f"Bearer {token}"}
    )


async def test_sign_up_returns_a_working_token(client: httpx.AsyncClient, app_token: str) -> None:
    response = await _sign_up(client, app_token)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["token_type"] == "Bearer"
    assert body["scope"] == "follow read write"
    me = await client.get(
        "/api/v1/accounts/verify_credentials",
        headers={"Authorization": f"Bearer {body['access_token']}"},
    )
    assert me.status_code == 200
    assert me.json()["username"] == "dora"
    assert me.json()["source"]["privacy"] == "public"


async def test_sign_up_rejects_bad_input(
    client: httpx.AsyncClient, app_token: str, alice: Person
) -> None:
    cases: list[dict[str, Any]] = [
        {"username": None},
        {"email": None},
        {"password": None},
        {"agreement": "false"},
        {"password": "short"},
        {"username": "alice"},
        {"username": "ALICE"},
        {"email": "alice@example.test"},
        {"username": "has space"},
        {"username": "x" * 31},
        {"email": "not-an-email"},
        {"username": "admin"},
    ]
    for case in cases:
        response = await _sign_up(client, app_token, **case)
        assert response.status_code == 422, case
        assert response.json()["error"].startswith("Validation failed"), case
    taken = (await _sign_up(client, app_token, username="Alice")).json()
    assert "username is taken" in taken["error"]
    assert taken["details"]["username"][0]["error"] == "ERR_TAKEN"
    short = (await _sign_up(client, app_token, password="short")).json()
    assert short["details"]["password"][0]["error"] == "ERR_TOO_SHORT"


async def test_sign_up_needs_an_app_token(client: httpx.AsyncClient, alice: Person) -> None:
    anonymous = await client.post("/api/v1/accounts", data=GOOD)
    assert anonymous.status_code == 401
    signed_in = await alice.client.post("/api/v1/accounts", data=GOOD)
    assert signed_in.status_code == 403


async def test_closed_registrations(
    client: httpx.AsyncClient, settings: Settings, app_token: str
) -> None:
    settings.registrations_open = False
    response = await _sign_up(client, app_token)
    assert response.status_code == 403
    assert "closed" in response.json()["error"]


async def test_sign_up_with_json(client: httpx.AsyncClient, app_token: str) -> None:
    response = await client.post(
        "/api/v1/accounts",
        json={**GOOD, "agreement": True},
        headers={"Authorization": f"Bearer {app_token}"},
    )
    assert response.status_code == 200
