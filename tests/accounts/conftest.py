"""Account fixtures: sign-ups come from one address many times, so rate limits are off here."""

from __future__ import annotations

import httpx
import pytest

from townsquare.config import Settings


@pytest.fixture
def settings(settings: Settings) -> Settings:
    settings.rate_limits_enabled = False
    return settings


@pytest.fixture
async def app_token(client: httpx.AsyncClient) -> str:
    """A client-credentials token of a freshly registered app, as sign-up needs."""
    app = (
        await client.post(
            "/api/v1/apps",
            data={
                "client_name": "Signup",
                "redirect_uris": "urn:ietf:wg:oauth:2.0:oob",
                "scopes": "read write follow",
            },
        )
    ).json()
    token = await client.post(
        "/oauth/token",
        data={
            "grant_type": "client_credentials",
            "client_id": app["client_id"],
            "client_secret": app["client_secret"],
            "scope": "read write follow",
        },
    )
    access: str = token.json()["access_token"]
    return access
