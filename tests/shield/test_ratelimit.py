"""Rate limits: counted per token or address, reported in headers, refused with 429."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from asgi_lifespan import LifespanManager

from townsquare.app import create_app
from townsquare.config import Settings

PATH = "/api/v1/no-such-endpoint"


@pytest.fixture
async def limited(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    tight = settings.model_copy(
        update={
            "rate_limit_anonymous": "3/minute",
            "rate_limit_login": "2/minute",
            "rate_limit_authenticated": "5/minute",
        }
    )
    application = create_app(tight, migrate=False)
    async with LifespanManager(application):
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            yield http


async def test_headers_count_down_then_429_with_retry_after(limited: httpx.AsyncClient) -> None:
    remaining = []
    for _ in range(3):
        response = await limited.get(PATH)
        assert response.headers["X-RateLimit-Limit"] == "3"
        assert response.headers["X-RateLimit-Reset"].endswith("Z")
        remaining.append(int(response.headers["X-RateLimit-Remaining"]))
    assert remaining == [2, 1, 0]

    refused = await limited.get(PATH)
    assert refused.status_code == 429
    assert refused.json() == {"error": "Too many requests"}
    assert 1 <= int(refused.headers["Retry-After"]) <= 60


async def test_tokens_are_counted_apart_from_the_address(limited: httpx.AsyncClient) -> None:
    for _ in range(3):
        await limited.get(PATH)
    assert (await limited.get(PATH)).status_code == 429
    # Someone with a token (valid or not, the count is per token) has their own budget.
    with_token = await limited.get(PATH, headers={"Authorization": "Bearer some-token"})
    assert with_token.status_code != 429
    assert with_token.headers["X-RateLimit-Limit"] == "5"


async def test_login_attempts_are_limited_per_address_even_with_tokens(
    limited: httpx.AsyncClient,
) -> None:
    statuses = []
    for attempt in range(3):
        response = await limited.post(
            "/oauth/token",
            data={"grant_type": "password", "username": "x", "password": "y"},
            headers={"Authorization": f"Bearer rotating-{attempt}"},
        )
        statuses.append(response.status_code)
    assert statuses[:2] != [429, 429]
    assert statuses[2] == 429


async def test_health_checks_are_never_limited(limited: httpx.AsyncClient) -> None:
    for _ in range(10):
        assert (await limited.get("/healthz")).status_code == 200
