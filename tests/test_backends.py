"""The shared fixtures: each test gets its own empty database, on SQLite and on PostgreSQL."""

from __future__ import annotations

import pytest
from fastapi import FastAPI
from sqlalchemy import func, select, text

from townsquare.accounts.models import Account
from townsquare.config import Settings
from townsquare.state import state_of

from .conftest import PersonFactory


@pytest.mark.parametrize("round_", [1, 2])
async def test_every_test_starts_from_empty_tables(
    app: FastAPI, make_person: PersonFactory, round_: int
) -> None:
    db = state_of(app).db
    async with db.read() as session:
        assert await session.scalar(select(func.count()).select_from(Account)) == 0
    # Left behind on purpose: the next round must not see it.
    await make_person(f"leftover{round_}")


async def test_backend_is_the_one_named(app: FastAPI, settings: Settings) -> None:
    db = state_of(app).db
    async with db.read() as session:
        if db.is_sqlite:
            version = await session.scalar(text("SELECT sqlite_version()"))
        else:
            version = await session.scalar(text("SELECT version()"))
    assert version
    assert ("PostgreSQL" in str(version)) is (not settings.is_sqlite)
    assert settings.data_dir.is_dir()
