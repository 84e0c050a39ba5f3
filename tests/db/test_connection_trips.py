"""SQLite connections with a thread of their own: each statement makes one trip to that thread
(a busy event loop makes every trip back wait for a turn), a reader's BEGIN and ROLLBACK none,
and what the statements return is what they would return otherwise."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import text

from townsquare.db.engine import Database, _ThreadConnection


@pytest.fixture
def db(words_db: Database) -> Database:
    return words_db


@pytest.fixture
async def trips(db: Database, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The name of each function handed to a connection's thread, from when the connections
    are open (opening one sets it up with a few trips of its own)."""
    async with db.read() as session:
        await session.execute(text("SELECT 1"))
    taken: list[str] = []
    original = _ThreadConnection._execute

    async def counted(self: _ThreadConnection, fn: Any, *args: Any, **kwargs: Any) -> Any:
        taken.append(getattr(fn, "__name__", repr(fn)))
        return await original(self, fn, *args, **kwargs)

    monkeypatch.setattr(_ThreadConnection, "_execute", counted)
    return taken


async def test_a_read_makes_one_trip_per_statement(db: Database, trips: list[str]) -> None:
    async with db.read() as session:
        words = list(await session.scalars(text("SELECT word FROM words ORDER BY word")))
        count = await session.scalar(text("SELECT count(*) FROM words"))
        none = (await session.execute(text("SELECT word FROM words WHERE id > 99"))).all()
    assert (words, count, none) == (["square", "town"], 2, [])
    assert len(trips) == 3


async def test_a_write_makes_a_trip_for_begin_each_statement_and_commit(
    db: Database, trips: list[str]
) -> None:
    async with db.write() as session:
        inserted = await session.execute(text("INSERT INTO words (word) VALUES ('post')"))
        updated = await session.execute(text("UPDATE words SET word = upper(word)"))
        returned = await session.scalar(
            text("INSERT INTO words (word) VALUES ('reply') RETURNING id")
        )
    assert inserted.lastrowid == 3  # type: ignore[attr-defined]
    assert updated.rowcount == 3  # type: ignore[attr-defined]
    assert returned == 4
    # BEGIN IMMEDIATE waits for the write lock and COMMIT for the disk: both on the thread.
    assert len(trips) == 5
    async with db.read() as session:
        words = list(await session.scalars(text("SELECT word FROM words ORDER BY id")))
    assert words == ["SQUARE", "TOWN", "POST", "reply"]


async def test_a_failed_write_leaves_nothing_and_the_reader_sees_the_last_commit(
    db: Database,
) -> None:
    with pytest.raises(Exception, match="no_such_table"):
        async with db.write() as session:
            await session.execute(text("INSERT INTO words (word) VALUES ('lost')"))
            await session.execute(text("INSERT INTO no_such_table VALUES (1)"))
    async with db.read() as session:
        assert await session.scalar(text("SELECT count(*) FROM words")) == 2
    async with db.write() as session:
        await session.execute(text("INSERT INTO words (word) VALUES ('kept')"))
    # The same pooled reader: its last transaction ended, so it sees the new row.
    async with db.read() as session:
        assert await session.scalar(text("SELECT count(*) FROM words")) == 3
