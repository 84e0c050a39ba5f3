from __future__ import annotations

import base64
import hashlib
import re
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx

from tests.conftest import Person
from tests.oauth.conftest import PASSWORD

REDIRECT = "https://app.example/callback"
VERIFIER = "a" * 20 + "-verifier-" + "b" * 30


def _challenge(verifier: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).decode().rstrip("=")


def _hidden_fields(html: str) -> dict[str, str]:
    return dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', html))


async def _open_page(
    client: httpx.AsyncClient, app: dict[str, Any], **extra: str
) -> httpx.Response:
    params = {
        "response_type": "code",
        "client_id": app["client_id"],
        "redirect_uri": REDIRECT,
        "scope": "read write",
        "state": "xyz",
        **extra,
    }
    return await client.get("/oauth/authorize", params=params)


async def _log_in(
    client: httpx.AsyncClient, page: httpx.Response, password: str = PASSWORD, **extra: str
) -> httpx.Response:
    form = {**_hidden_fields(page.text), "login": "alice", "password": password}
    form["decision"] = "allow"
    form.update(extra)
    return await client.post("/oauth/authorize", data=form)


async def test_code_flow_with_pkce(
    client: httpx.AsyncClient, oauth_app: dict[str, Any], alice: Person
) -> None:
    page = await _open_page(
        client, oauth_app, code_challenge=_challenge(VERIFIER), code_challenge_method="S256"
    )
    assert page.status_code == 200
    assert "Test App" in page.text
    assert page.headers["x-frame-options"] == "DENY"
    assert "csrf_token" in _hidden_fields(page.text)

    answer = await _log_in(client, page)
    assert answer.status_code == 302
    location = urlsplit(answer.headers["location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == REDIRECT
    query = parse_qs(location.query)
    assert query["state"] == ["xyz"]
    code = query["code"][0]

    exchange = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": REDIRECT,
        "client_id": oauth_app["client_id"],
        "client_secret": oauth_app["client_secret"],
    }
    wrong = await client.post("/oauth/token", data={**exchange, "code_verifier": "x" * 50})
    assert wrong.status_code == 400
    assert wrong.json()["error"] == "invalid_grant"

    token = await client.post("/oauth/token", data={**exchange, "code_verifier": VERIFIER})
    assert token.status_code == 200, token.text
    assert token.json()["scope"] == "read write"
    me = await client.get(
        "/api/v1/accounts/verify_credentials",
        headers={"Authorization": f"Bearer {token.json()['access_token']}"},
    )
    assert me.json()["username"] == "alice"

    reused = await client.post("/oauth/token", data={**exchange, "code_verifier": VERIFIER})
    assert reused.status_code == 400
    assert reused.json()["error"] == "invalid_grant"


async def test_code_without_verifier_is_refused_when_challenged(
    client: httpx.AsyncClient, oauth_app: dict[str, Any], alice: Person
) -> None:
    page = await _open_page(client, oauth_app, code_challenge=VERIFIER)  # plain method
    code = parse_qs(urlsplit((await _log_in(client, page)).headers["location"]).query)["code"][0]
    exchange = {
        "grant_type": "authorization_code",
        "code": code,
        "client_id": oauth_app["client_id"],
        "client_secret": oauth_app["client_secret"],
    }
    missing = await client.post("/oauth/token", data=exchange)
    assert missing.status_code == 400
    assert missing.json()["error"] == "invalid_request"
    plain = await client.post("/oauth/token", data={**exchange, "code_verifier": VERIFIER})
    assert plain.status_code == 200


async def test_out_of_band_code_is_shown(
    client: httpx.AsyncClient, oauth_app: dict[str, Any], alice: Person
) -> None:
    page = await _open_page(client, oauth_app, redirect_uri="urn:ietf:wg:oauth:2.0:oob")
    answer = await _log_in(client, page)
    assert answer.status_code == 200
    match = re.search(r'id="authorization-code">([^<]+)<', answer.text)
    assert match is not None
    token = await client.post(
        "/oauth/token",
        data={
            "grant_type": "authorization_code",
            "code": match.group(1),
            "redirect_uri": "urn:ietf:wg:oauth:2.0:oob",
            "client_id": oauth_app["client_id"],
            "client_secret": oauth_app["client_secret"],
        },
    )
    assert token.status_code == 200


async def test_wrong_password_shows_the_form_again(
    client: httpx.AsyncClient, oauth_app: dict[str, Any], alice: Person
) -> None:
    page = await _open_page(client, oauth_app)
    answer = await _log_in(client, page, password="wrong password")
    assert answer.status_code == 401
    assert "Invalid login or password" in answer.text
    assert "location" not in answer.headers


async def test_form_without_the_csrf_cookie_is_refused(
    client: httpx.AsyncClient, oauth_app: dict[str, Any], alice: Person
) -> None:
    page = await _open_page(client, oauth_app)
    client.cookies.clear()
    answer = await _log_in(client, page)
    assert answer.status_code == 403
    assert "location" not in answer.headers
    page = await _open_page(client, oauth_app)
    forged = await _log_in(client, page, csrf_token="forged")
    assert forged.status_code == 403


async def test_deny_returns_access_denied(
    client: httpx.AsyncClient, oauth_app: dict[str, Any], alice: Person
) -> None:
    page = await _open_page(client, oauth_app)
    answer = await _log_in(client, page, decision="deny")
    assert answer.status_code == 302
    query = parse_qs(urlsplit(answer.headers["location"]).query)
    assert query["error"] == ["access_denied"]
    assert query["state"] == ["xyz"]


async def test_unregistered_redirect_is_never_followed(
    client: httpx.AsyncClient, oauth_app: dict[str, Any]
) -> None:
    page = await _open_page(client, oauth_app, redirect_uri="https://evil.example/steal")
    assert page.status_code == 400
    assert "location" not in page.headers
    unknown = await client.get(
        "/oauth/authorize", params={"response_type": "code", "client_id": "nope"}
    )
    assert unknown.status_code == 400


async def test_bad_scope_goes_back_to_the_client(
    client: httpx.AsyncClient, oauth_app: dict[str, Any]
) -> None:
    page = await _open_page(client, oauth_app, scope="admin:write")
    assert page.status_code == 302
    assert parse_qs(urlsplit(page.headers["location"]).query)["error"] == ["invalid_scope"]
