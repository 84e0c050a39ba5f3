from __future__ import annotations

import base64
from typing import Any

import httpx
from fastapi import FastAPI

from tests.conftest import Person
from tests.oauth.conftest import PASSWORD, register
from townsquare.db.base import utcnow
from townsquare.state import state_of


def _client_fields(app: dict[str, Any]) -> dict[str, str]:
    return {"client_id": app["client_id"], "client_secret": app["client_secret"]}


async def _password_grant(
    client: httpx.AsyncClient, app: dict[str, Any], username: str, password: str, **extra: str
) -> httpx.Response:
    data = {"grant_type": "password", "username": username, "password": password, **extra}
    return await client.post("/oauth/token", data={**data, **_client_fields(app)})


def _auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_password_grant_by_email_and_by_username(
    client: httpx.AsyncClient, oauth_app: dict[str, Any], alice: Person
) -> None:
    for login in ("alice@example.test", "ALICE"):
        response = await _password_grant(client, oauth_app, login, PASSWORD, scope="read write")
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["token_type"] == "Bearer"
        assert body["scope"] == "read write"
        assert isinstance(body["created_at"], int)
        me = await client.get(
            "/api/v1/accounts/verify_credentials", headers=_auth(body["access_token"])
        )
        assert me.status_code == 200
        assert me.json()["username"] == "alice"


async def test_password_grant_refuses_wrong_password_and_unknown_account(
    client: httpx.AsyncClient, oauth_app: dict[str, Any], alice: Person
) -> None:
    wrong = await _password_grant(client, oauth_app, "alice", "not the password")
    unknown = await _password_grant(client, oauth_app, "nobody", PASSWORD)
    for response in (wrong, unknown):
        assert response.status_code == 400
        assert response.json()["error"] == "invalid_grant"
    # The two answers are identical, so they do not reveal which accounts exist.
    assert wrong.json() == unknown.json()


async def test_suspended_account_cannot_log_in(
    client: httpx.AsyncClient, app: FastAPI, oauth_app: dict[str, Any], alice: Person
) -> None:
    async with state_of(app).db.write() as session:
        account = await session.get(type(alice.account), alice.account.id)
        assert account is not None
        account.suspended_at = utcnow()
    response = await _password_grant(client, oauth_app, "alice", PASSWORD)
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_grant"


async def test_wrong_client_secret_is_invalid_client(
    client: httpx.AsyncClient, oauth_app: dict[str, Any], alice: Person
) -> None:
    response = await client.post(
        "/oauth/token",
        data={
            "grant_type": "password",
            "username": "alice",
            "password": PASSWORD,
            "client_id": oauth_app["client_id"],
            "client_secret": "wrong",
        },
    )
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"
    assert "error_description" in response.json()


async def test_client_credentials_with_http_basic(
    client: httpx.AsyncClient, oauth_app: dict[str, Any]
) -> None:
    basic = base64.b64encode(
        f"{oauth_app['client_id']}:{oauth_app['client_secret']}".encode()
    ).decode()
    response = await client.post(
        "/oauth/token",
        data={"grant_type": "client_credentials", "scope": "read"},
        headers={"Authorization": f"Basic {basic}"},
    )
    assert response.status_code == 200
    body = response.json()
    assert body["scope"] == "read"
    assert "refresh_token" not in body
    # An app token acts for no one: endpoints about "me" refuse it.
    me = await client.get(
        "/api/v1/accounts/verify_credentials", headers=_auth(body["access_token"])
    )
    assert me.status_code == 422


async def test_scope_beyond_the_app_is_refused(client: httpx.AsyncClient, alice: Person) -> None:
    read_only_app = await register(client, scopes="read")
    response = await _password_grant(client, read_only_app, "alice", PASSWORD, scope="read write")
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_scope"
    unknown = await _password_grant(client, read_only_app, "alice", PASSWORD, scope="sudo")
    assert unknown.json()["error"] == "invalid_scope"


async def test_read_only_token_cannot_write(
    client: httpx.AsyncClient, oauth_app: dict[str, Any], alice: Person
) -> None:
    response = await _password_grant(client, oauth_app, "alice", PASSWORD, scope="read")
    token = response.json()["access_token"]
    update = await client.patch(
        "/api/v1/accounts/update_credentials",
        data={"display_name": "Changed"},
        headers=_auth(token),
    )
    assert update.status_code == 403
    me = await client.get("/api/v1/accounts/verify_credentials", headers=_auth(token))
    assert me.json()["display_name"] == ""


async def test_refresh_token_replaces_the_token(
    client: httpx.AsyncClient, oauth_app: dict[str, Any], alice: Person
) -> None:
    first = (await _password_grant(client, oauth_app, "alice", PASSWORD, scope="read")).json()
    response = await client.post(
        "/oauth/token",
        data={
            "grant_type": "refresh_token",
            "refresh_token": first["refresh_token"],
            **_client_fields(oauth_app),
        },
    )
    assert response.status_code == 200
    second = response.json()
    assert second["access_token"] != first["access_token"]
    assert second["scope"] == "read"
    old = await client.get(
        "/api/v1/accounts/verify_credentials", headers=_auth(first["access_token"])
    )
    assert old.status_code == 401
    new = await client.get(
        "/api/v1/accounts/verify_credentials", headers=_auth(second["access_token"])
    )
    assert new.status_code == 200
    again = await client.post(
        "/oauth/token",
        data={
            "grant_type": "refresh_token",
            "refresh_token": first["refresh_token"],
            **_client_fields(oauth_app),
        },
    )
    assert again.status_code == 400
    assert again.json()["error"] == "invalid_grant"


async def test_revoke_stops_the_token(
    client: httpx.AsyncClient, oauth_app: dict[str, Any], alice: Person
) -> None:
    token = (await _password_grant(client, oauth_app, "alice", PASSWORD)).json()["access_token"]
    other_app = await register(client)
    refused = await client.post(
        "/oauth/revoke", data={"token": token, "client_id": other_app["client_id"]}
    )
    assert refused.status_code == 403
    response = await client.post(
        "/oauth/revoke", data={"token": token, **_client_fields(oauth_app)}
    )
    assert response.status_code == 200
    assert response.json() == {}
    me = await client.get("/api/v1/accounts/verify_credentials", headers=_auth(token))
    assert me.status_code == 401


async def test_bad_token_requests(client: httpx.AsyncClient, oauth_app: dict[str, Any]) -> None:
    missing = await client.post("/oauth/token", data=_client_fields(oauth_app))
    assert missing.status_code == 400
    assert missing.json()["error"] == "invalid_request"
    unsupported = await client.post(
        "/oauth/token", data={"grant_type": "implicit", **_client_fields(oauth_app)}
    )
    assert unsupported.json()["error"] == "unsupported_grant_type"
    not_a_string = await client.post(
        "/oauth/token", json={"grant_type": "password", "username": 5, "password": []}
    )
    assert not_a_string.status_code == 400
    assert not_a_string.json()["error"] == "invalid_request"
