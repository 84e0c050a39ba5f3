"""What a token resolves to is cached for reads; revocation and suspension still take hold.

Two app instances on one database stand for two workers (or nodes). The cache's clock is moved
instead of waiting, so the bound documented in docs/TIMELINES.md is what is checked.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from sqlalchemy import update

from tests.conftest import Person, PersonFactory
from tests.oauth.conftest import PASSWORD
from tests.oauth.test_token import _auth, _client_fields, _password_grant
from townsquare.api.auth import TOKEN_CACHE_SECONDS, TokenCache, token_cache
from townsquare.app import create_app
from townsquare.config import Settings
from townsquare.db.base import utcnow
from townsquare.oauth.models import OAuthToken
from townsquare.state import state_of

ME = "/api/v1/accounts/verify_credentials"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _clocked(app: FastAPI) -> Clock:
    clock = Clock()
    cache: TokenCache = token_cache(state_of(app))
    cache.clock = clock
    return clock


@pytest.fixture
async def other_app(settings: Settings) -> AsyncIterator[FastAPI]:
    """A second worker on the same database."""
    application = create_app(settings, migrate=False)
    async with LifespanManager(application, startup_timeout=60, shutdown_timeout=60):
        yield application


def _client(app: FastAPI, person: Person) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://testserver", headers=person.headers
    )


async def test_revoked_in_one_worker_refused_by_another_within_the_bound(
    app: FastAPI, other_app: FastAPI, make_person: PersonFactory
) -> None:
    alice = await make_person("alice")
    clock = _clocked(other_app)
    async with _client(other_app, alice) as elsewhere:
        assert (await elsewhere.get(ME)).status_code == 200
        async with state_of(app).db.write() as session:
            await session.execute(
                update(OAuthToken)
                .where(OAuthToken.account_id == alice.account.id)
                .values(revoked_at=utcnow())
            )
        # The worker that revoked it refuses it at once.
        assert (await alice.client.get(ME)).status_code == 401
        # A write is never served from the cache, in any worker.
        posted = await elsewhere.post("/api/v1/statuses", data={"status": "after revocation"})
        assert posted.status_code == 401
        # Reads elsewhere are refused once the bound has passed.
        clock.now += TOKEN_CACHE_SECONDS
        assert (await elsewhere.get(ME)).status_code == 401
        assert (await elsewhere.get("/api/v1/timelines/home")).status_code == 401


async def test_suspended_through_one_worker_refused_by_another_within_the_bound(
    app: FastAPI, other_app: FastAPI, make_person: PersonFactory
) -> None:
    bob = await make_person("bob")
    mod = await make_person("mod", role="moderator")
    clock = _clocked(other_app)
    async with _client(other_app, bob) as elsewhere:
        assert (await elsewhere.get("/api/v1/timelines/home")).status_code == 200
        action = await mod.client.post(
            f"/api/v1/admin/accounts/{bob.id}/action", data={"type": "suspend"}
        )
        assert action.status_code == 200
        assert (await bob.client.get("/api/v1/timelines/home")).status_code == 403
        clock.now += TOKEN_CACHE_SECONDS
        assert (await elsewhere.get("/api/v1/timelines/home")).status_code == 403


async def test_revoked_through_the_api_refused_at_once_by_the_same_worker(
    client: httpx.AsyncClient, oauth_app: dict[str, Any], alice: Person
) -> None:
    token = (await _password_grant(client, oauth_app, "alice", PASSWORD)).json()["access_token"]
    # Read twice, so the second answer came from the cache.
    assert (await client.get(ME, headers=_auth(token))).status_code == 200
    assert (await client.get(ME, headers=_auth(token))).status_code == 200
    revoked = await client.post("/oauth/revoke", data={"token": token, **_client_fields(oauth_app)})
    assert revoked.status_code == 200
    assert (await client.get(ME, headers=_auth(token))).status_code == 401


async def test_profile_change_seen_at_once_by_the_same_worker(
    make_person: PersonFactory,
) -> None:
    dave = await make_person("dave")
    assert (await dave.client.get(ME)).json()["display_name"] == ""
    changed = await dave.client.patch(
        "/api/v1/accounts/update_credentials", data={"display_name": "Dave"}
    )
    assert changed.status_code == 200
    assert (await dave.client.get(ME)).json()["display_name"] == "Dave"
