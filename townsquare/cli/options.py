"""Options every command shares: where the instance's data lives."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any, TypeVar

import click

from townsquare.api.errors import ApiError
from townsquare.config import Settings
from townsquare.db.engine import Database
from townsquare.db.migrate import upgrade

F = TypeVar("F", bound=Callable[..., Any])
T = TypeVar("T")


def storage_options(command: F) -> F:
    """``--data-dir`` and ``--database-url``, overriding TOWNSQUARE_DATA_DIR / _DATABASE_URL."""
    command = click.option(
        "--database-url",
        default=None,
        help="SQLAlchemy URL; overrides TOWNSQUARE_DATABASE_URL (empty: SQLite in the data dir).",
    )(command)
    command = click.option(
        "--data-dir",
        type=click.Path(file_okay=False, path_type=Path),
        default=None,
        help="Where the SQLite database and media live; overrides TOWNSQUARE_DATA_DIR.",
    )(command)
    return command


def settings_from(data_dir: Path | None, database_url: str | None) -> Settings:
    """Settings from the environment with the command line's overrides exported into it.

    Exporting them (rather than only passing them on) lets worker processes started by uvicorn
    read the same settings.
    """
    if data_dir is not None:
        os.environ["TOWNSQUARE_DATA_DIR"] = str(data_dir.resolve())
    if database_url is not None:
        os.environ["TOWNSQUARE_DATABASE_URL"] = database_url
    return Settings()


def run_with_database(settings: Settings, work: Callable[[Database], Coroutine[Any, Any, T]]) -> T:
    """Run ``work`` with the instance's database, turning service errors into CLI errors.

    The schema is brought up to date first, so administering a brand-new data dir works
    before the first ``serve``.
    """
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    upgrade(settings.effective_database_url)

    async def session() -> T:
        db = Database(settings.effective_database_url, pool_size=2)
        try:
            return await work(db)
        finally:
            await db.dispose()

    try:
        return asyncio.run(session())
    except ApiError as error:
        raise click.ClickException(error.message) from error
