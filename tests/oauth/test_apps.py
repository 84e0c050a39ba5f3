from __future__ import annotations

from typing import Any

import httpx

from tests.oauth.conftest import register


async def test_register_app_with_form(client: httpx.AsyncClient) -> None:
    app = await register(client, scopes="read write")
    assert app["name"] == "Test App"
    assert app["scopes"] == ["read", "write"]
    assert app["redirect_uris"] == ["https://app.example/callback", "urn:ietf:wg:oauth:2.0:oob"]
    assert app["redirect_uri"] == "https://app.example/callback\nurn:ietf:wg:oauth:2.0:oob"
    assert app["client_id"] and app["client_secret"]
    assert app["vapid_key"] == ""
    assert isinstance(app["id"], str)


async def test_register_app_with_json_and_array_of_redirect_uris(
    client: httpx.AsyncClient,
) -> None:
    response = await client.post(
        "/api/v1/apps",
        json={
            "client_name": "Json App",
            "redirect_uris": ["myapp://callback", "https://a.example/cb"],
            "website": "https://a.example",
        },
    )
    assert response.status_code == 200
    body = response.json()
    assert body["redirect_uris"] == ["myapp://callback", "https://a.example/cb"]
    assert body["scopes"] == ["read"]
    assert body["website"] == "https://a.example"


async def test_register_app_with_query_string(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/api/v1/apps",
        params={"client_name": "Query App", "redirect_uris": "urn:ietf:wg:oauth:2.0:oob"},
    )
    assert response.status_code == 200
    assert response.json()["name"] == "Query App"


async def test_register_app_rejects_bad_input(client: httpx.AsyncClient) -> None:
    cases: list[dict[str, Any]] = [
        {"redirect_uris": "urn:ietf:wg:oauth:2.0:oob"},
        {"client_name": "x"},
        {"client_name": "x", "redirect_uris": "not a uri"},
        {"client_name": "x", "redirect_uris": "https://a.example/#frag"},
        {"client_name": "x", "redirect_uris": "urn:ietf:wg:oauth:2.0:oob", "scopes": "everything"},
        {"client_name": "   ", "redirect_uris": "urn:ietf:wg:oauth:2.0:oob"},
    ]
    for data in cases:
        response = await client.post("/api/v1/apps", data=data)
        assert response.status_code == 422, data
        assert "error" in response.json()


async def test_verify_app_credentials(client: httpx.AsyncClient) -> None:
    app = await register(client)
    token = await client.post(
        "/oauth/token",
        data={
            "grant_type": "client_credentials",
            "client_id": app["client_id"],
            "client_secret": app["client_secret"],
        },
    )
    assert token.status_code == 200
    access = token.json()["access_token"]
    response = await client.get(
        "/api/v1/apps/verify_credentials", headers={"Authorization": f"Bearer {access}"}
    )
    assert response.status_code == 200
    assert response.json()["name"] == "Test App"
    assert "client_secret" not in response.json()

    anonymous = await client.get("/api/v1/apps/verify_credentials")
    assert anonymous.status_code == 401


async def test_server_metadata(client: httpx.AsyncClient) -> None:
    response = await client.get("/.well-known/oauth-authorization-server")
    assert response.status_code == 200
    body = response.json()
    assert body["issuer"] == "http://testserver/"
    assert body["token_endpoint"] == "http://testserver/oauth/token"
    assert body["app_registration_endpoint"] == "http://testserver/api/v1/apps"
    assert "write:statuses" in body["scopes_supported"]
    assert body["code_challenge_methods_supported"] == ["S256"]
    assert set(body["grant_types_supported"]) >= {"authorization_code", "password"}
