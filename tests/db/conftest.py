"""A small SQLite database of two words, for the tests of how statements reach it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import text

from townsquare.db.engine import Database


@pytest.fixture
async def words_db(tmp_path: Path) -> AsyncIterator[Database]:
    """A database (pools of two connections) with a table ``words``: 'square' and 'town'."""
    database = Database(f"sqlite+aiosqlite:///{tmp_path / 'words.sqlite3'}", pool_size=2)
    async with database.write() as session:
        await session.execute(text("CREATE TABLE words (id INTEGER PRIMARY KEY, word TEXT)"))
        await session.execute(text("INSERT INTO words (word) VALUES ('square'), ('town')"))
    yield database
    await database.dispose()
