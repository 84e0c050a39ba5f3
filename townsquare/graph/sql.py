"""Insert-or-ignore and upsert that read the same on SQLite and PostgreSQL.

Both engines speak ``INSERT ... ON CONFLICT``; only the SQLAlchemy construct differs by dialect.
A unique key decides whether a row is new, so two concurrent requests cannot both create it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import DeclarativeBase


def _insert(session: AsyncSession, model: type[DeclarativeBase]) -> Any:
    if session.get_bind().dialect.name == "postgresql":
        return postgresql.insert(model)
    return sqlite.insert(model)


async def insert_or_ignore(
    session: AsyncSession,
    model: type[DeclarativeBase],
    values: dict[str, Any],
    conflict: Sequence[str],
) -> bool:
    """Insert one row unless ``conflict`` columns already match one; True when it was inserted."""
    statement = (
        _insert(session, model)
        .values(**values)
        .on_conflict_do_nothing(index_elements=list(conflict))
        .returning(*(getattr(model, column) for column in conflict))
    )
    inserted = (await session.execute(statement)).first()
    return inserted is not None


async def upsert(
    session: AsyncSession,
    model: type[DeclarativeBase],
    values: dict[str, Any],
    conflict: Sequence[str],
    update: dict[str, Any],
) -> None:
    """Insert one row, or update ``update`` columns of the row matching ``conflict``."""
    statement = _insert(session, model).values(**values)
    statement = statement.on_conflict_do_update(index_elements=list(conflict), set_=update)
    await session.execute(statement)
