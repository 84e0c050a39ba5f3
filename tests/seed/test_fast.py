"""``townsquare seed --fast``: the quick bulk load leaves the same schema and a usable instance."""

from __future__ import annotations

import asyncio
from pathlib import Path

from click.testing import CliRunner
from sqlalchemy import func, select, text

from townsquare.accounts.models import Account
from townsquare.cli import main
from townsquare.config import Settings
from townsquare.db.engine import Database
from townsquare.graph.models import Follow
from townsquare.statuses.models import Status

INDEXES = {
    "postgresql": "SELECT indexdef FROM pg_indexes WHERE schemaname = current_schema()",
    "sqlite": "SELECT sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL",
}


async def _indexes(db: Database) -> set[str]:
    async with db.read() as session:
        return set((await session.scalars(text(INDEXES[db.dialect]))).all())


async def test_fast_seed_keeps_every_index_and_consistent_rows(
    settings: Settings, tmp_path: Path
) -> None:
    db = Database(settings.effective_database_url)
    try:
        before = await _indexes(db)
        assert before, "the migrated schema has indexes"
        # Seeding wants the SQLite file to itself (it turns the journal off while loading).
        await db.dispose()
        args = ["seed", "--fast", "--accounts", "40", "--statuses", "500"]
        args += ["--follows-per-account", "5", "--tokens", "2"]
        args += ["--tokens-file", str(tmp_path / "tokens.txt")]
        args += ["--data-dir", str(settings.data_dir), "--database-url", settings.database_url]
        result = await asyncio.to_thread(CliRunner().invoke, main, args)
        assert result.exit_code == 0, result.output

        assert await _indexes(db) == before
        async with db.read() as session:
            assert await session.scalar(select(func.count()).select_from(Account)) == 40
            assert await session.scalar(select(func.count()).select_from(Status)) == 500
            assert await session.scalar(select(func.count()).select_from(Follow)) == 40 * 5
            # Every follow points at an account that exists (foreign keys were not checked).
            dangling = await session.scalar(
                select(func.count())
                .select_from(Follow)
                .outerjoin(Account, Account.id == Follow.target_account_id)
                .where(Account.id.is_(None))
            )
            assert dangling == 0
            # A lookup through a rebuilt index finds the rows.
            first = await session.scalar(select(Account.id).where(Account.username == "user00001"))
            assert first is not None
            assert (
                await session.scalar(
                    select(func.count()).select_from(Status).where(Status.account_id.is_not(None))
                )
                == 500
            )
    finally:
        await db.dispose()
