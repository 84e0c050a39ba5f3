"""Streaming connections are counted as they are opened, per address and per token."""

from __future__ import annotations

import pytest
from fastapi import FastAPI
from httpx_ws import WebSocketUpgradeError

from tests.shield.conftest import AppFactory, client_from, shield_of
from tests.streaming.conftest import _with_denial_responses, connect_ws


@pytest.fixture
async def limited_app(shielded: AppFactory) -> FastAPI:
    return await shielded(rate_limit_streaming="2/minute", rate_limit_streaming_address="2/minute")


async def test_event_streams_opened_too_often_get_429(limited_app: FastAPI) -> None:
    client = client_from(limited_app, "192.0.2.1")
    first = [await client.get("/api/v1/streaming/public") for _ in range(2)]
    # No token: refused by the streaming API itself, but each opening was counted.
    assert {r.status_code for r in first} == {401}
    refused = await client.get("/api/v1/streaming/public")
    assert refused.status_code == 429
    assert refused.json()["error"].startswith("Too many streaming connections")
    assert int(refused.headers["Retry-After"]) >= 1
    assert refused.headers["X-RateLimit-Remaining"] == "0"
    # Another address has its own budget; the health probe is never counted.
    assert (
        await client_from(limited_app, "192.0.2.2").get("/api/v1/streaming/public")
    ).status_code == 401
    assert (await client.get("/api/v1/streaming/health")).status_code == 200
    assert shield_of(limited_app).metrics.streaming_refused == 1


async def test_one_token_is_limited_across_addresses(limited_app: FastAPI) -> None:
    headers = {"Authorization": "Bearer the-same-token"}
    statuses = [
        (
            await client_from(limited_app, f"198.51.{n}.1", headers).get("/api/v1/streaming/user")
        ).status_code
        for n in range(3)
    ]
    assert statuses[2] == 429
    assert 429 not in statuses[:2]


async def test_websocket_handshakes_opened_too_often_are_denied(limited_app: FastAPI) -> None:
    ws = _with_denial_responses(limited_app)
    for _ in range(2):
        with pytest.raises(WebSocketUpgradeError) as unauthorised:
            async with connect_ws(ws, "/api/v1/streaming?stream=public"):
                pass
        assert unauthorised.value.response.status_code == 401
    with pytest.raises(WebSocketUpgradeError) as refused:
        async with connect_ws(ws, "/api/v1/streaming?stream=public"):
            pass
    assert refused.value.response.status_code == 429


async def test_a_token_found_invalid_is_refused_at_the_door_next_time(app: FastAPI) -> None:
    from townsquare.shield.standing import tokens

    tokens.clear()
    forged = client_from(app, "192.0.2.7", {"Authorization": "Bearer made-up"})
    first = await forged.get("/api/v1/streaming/user")
    assert first.status_code == 401  # looked up, and found wanting
    assert shield_of(app).metrics.streaming_refused == 0
    again = await forged.get("/api/v1/streaming/user")
    assert again.status_code == 401
    assert again.json() == {"error": "The access token is invalid"}
    assert shield_of(app).metrics.streaming_refused == 1  # this time without a lookup
