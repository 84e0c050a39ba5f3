"""OAuth fixtures: a registered app, and a person who can log in with a password."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from townsquare.config import Settings

PASSWORD = "correct horse battery"


@pytest.fixture
def settings(settings: Settings) -> Settings:
    # These tests log in many times from one address; the shield's own tests cover its limits.
    settings.rate_limits_enabled = False
    return settings


async def register(
    client: httpx.AsyncClient,
    *,
    scopes: str = "read write follow push",
    redirect_uris: str = "https://app.example/callback urn:ietf:wg:oauth:2.0:oob",
) -> dict[str, Any]:
    response = await client.post(
        "/api/v1/apps",
        data={"client_name": "Test App", "redirect_uris": redirect_uris, "scopes": scopes},
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


@pytest.fixture
async def oauth_app(client: httpx.AsyncClient) -> dict[str, Any]:
    return await register(client)
