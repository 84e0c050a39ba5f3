"""The search query uses the index migration 0002 built, on each database."""

from __future__ import annotations

from fastapi import FastAPI
from sqlalchemy import select, text

from townsquare.search.statuses import _matches
from townsquare.state import state_of
from townsquare.statuses.models import Status


async def test_search_expression_uses_the_index(app: FastAPI) -> None:
    async with state_of(app).db.read() as session:
        dialect = session.get_bind().dialect
        statement = select(Status.id).where(_matches(dialect.name, ["tomato"]))
        sql = statement.compile(dialect=dialect, compile_kwargs={"literal_binds": True})
        if dialect.name == "postgresql":
            await session.execute(text("SET LOCAL enable_seqscan = off"))
            rows = await session.execute(text(f"EXPLAIN {sql}"))
            expected = "ix_statuses_search"
        else:
            rows = await session.execute(text(f"EXPLAIN QUERY PLAN {sql}"))
            expected = "statuses_fts VIRTUAL TABLE INDEX"
        plan = "\n".join(str(row[-1]) for row in rows)
    assert expected in plan, plan
