"""Bounded mailboxes, connection limits, and streams of revoked tokens."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import update

from tests.conftest import Person
from tests.streaming.conftest import open_stream
from townsquare.config import Settings
from townsquare.db.base import utcnow
from townsquare.oauth.models import OAuthToken
from townsquare.oauth.tokens import digest
from townsquare.state import state_of
from townsquare.streaming.connection import (
    ConnectionClosed,
    ConnectionRegistry,
    Mailbox,
    Outgoing,
    StreamConnection,
)
from townsquare.streaming.hub import hub_of


@pytest.fixture
def settings(settings: Settings) -> Settings:
    settings.streaming_max_connections_per_account = 1
    return settings


async def test_a_slow_reader_is_dropped_instead_of_buffering_without_end() -> None:
    mailbox = Mailbox(limit=2)
    item = Outgoing(("public",), "update", "{}")
    assert mailbox.offer(item) and mailbox.offer(item)
    assert not mailbox.offer(item)
    assert mailbox.overflowed
    with pytest.raises(ConnectionClosed):
        await mailbox.take(1.0)


async def test_quiet_mailbox_returns_nothing_for_a_heartbeat() -> None:
    assert await Mailbox(limit=2).take(0.01) == []


def test_registry_counts_per_account_and_address() -> None:
    registry = ConnectionRegistry(per_account=2, per_address=3)

    def connection(account_id: int | None) -> StreamConnection:
        return StreamConnection(
            account_id=account_id, scopes=frozenset(), address="10.0.0.1", queue_limit=10
        )

    first, second = connection(1), connection(1)
    assert registry.admit(first) is None
    assert registry.admit(second) is None
    assert registry.admit(connection(1)) == "Too many streaming connections for this account"
    assert registry.admit(connection(2)) is None
    assert registry.admit(connection(3)) == "Too many streaming connections from this address"
    registry.release(first)
    assert registry.admit(connection(1)) is None


async def test_second_stream_over_the_account_limit_is_refused(
    sse: httpx.AsyncClient, alice: Person
) -> None:
    async with open_stream(sse, alice, "public"):
        refused = await sse.get("/api/v1/streaming/public", headers=alice.headers)
        assert refused.status_code == 429
    # Closing the first stream frees its place.
    async with open_stream(sse, alice, "public"):
        pass


async def test_revoking_the_token_closes_its_streams(
    sse: httpx.AsyncClient, alice: Person, bob: Person, app: FastAPI
) -> None:
    hub = hub_of(state_of(app))
    async with (
        open_stream(sse, alice, "public") as revoked,
        open_stream(sse, bob, "public") as kept,
    ):
        async with state_of(app).db.write() as session:
            await session.execute(
                update(OAuthToken)
                .where(OAuthToken.token_digest == digest(alice.token))
                .values(revoked_at=utcnow())
            )
        assert await hub.close_revoked() == 1
        # The revoked stream ends; the other one keeps beating.
        lines = [line async for line in revoked.lines]
        assert lines == [":)"] or lines[-1] == ":thump"
        assert await asyncio.wait_for(anext(kept.lines), 5) == ":)"
    assert len(hub.registry) == 0
