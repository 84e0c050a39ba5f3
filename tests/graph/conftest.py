"""Helpers for graph tests: reading accounts' counters straight from the database."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest
from fastapi import FastAPI

from townsquare.accounts.models import Account
from townsquare.state import state_of

Counts = Callable[[str], Awaitable[tuple[int, int]]]


@pytest.fixture
def counts(app: FastAPI) -> Counts:
    """(followers_count, following_count) of an account, as stored."""

    async def read(account_id: str) -> tuple[int, int]:
        async with state_of(app).db.read() as session:
            account = await session.get(Account, int(account_id))
            assert account is not None
            return account.followers_count, account.following_count

    return read
