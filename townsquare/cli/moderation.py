"""``townsquare admin promote|suspend|unsuspend|verify``: moderation from the operator's shell."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path

import click
from sqlalchemy.ext.asyncio import AsyncSession

from townsquare.accounts.models import ROLES
from townsquare.cli.options import run_with_database, settings_from, storage_options
from townsquare.db.engine import Database
from townsquare.moderation import service as moderation


def _change(
    data_dir: Path | None,
    database_url: str | None,
    change: Callable[[AsyncSession], Awaitable[None]],
    done: str,
) -> None:
    """Run one moderation change in its own transaction, then say what was done."""
    settings = settings_from(data_dir, database_url)

    async def work(db: Database) -> None:
        async with db.write() as session:
            await change(session)

    run_with_database(settings, work)
    click.echo(done)


@click.command()
@click.argument("username")
@click.argument("role", type=click.Choice(ROLES))
@storage_options
def promote(username: str, role: str, data_dir: Path | None, database_url: str | None) -> None:
    """Give USERNAME the role ROLE (user, moderator or admin)."""

    async def change(session: AsyncSession) -> None:
        await moderation.promote(session, username, role)

    _change(data_dir, database_url, change, f"@{username} is now {role}.")


@click.command()
@click.argument("username")
@storage_options
def suspend(username: str, data_dir: Path | None, database_url: str | None) -> None:
    """Suspend USERNAME: no log-in, no API access, statuses hidden from everyone."""

    async def change(session: AsyncSession) -> None:
        await moderation.suspend(session, username)

    _change(data_dir, database_url, change, f"@{username} is suspended.")


@click.command()
@click.argument("username")
@storage_options
def unsuspend(username: str, data_dir: Path | None, database_url: str | None) -> None:
    """Lift the suspension of USERNAME."""

    async def change(session: AsyncSession) -> None:
        await moderation.unsuspend(session, username)

    _change(data_dir, database_url, change, f"@{username} is no longer suspended.")


@click.command()
@click.argument("username")
@click.option("--off", is_flag=True, help="Remove the mark instead of setting it.")
@storage_options
def verify(username: str, off: bool, data_dir: Path | None, database_url: str | None) -> None:
    """Mark USERNAME as a verified (official) account, or unmark it with --off."""

    async def change(session: AsyncSession) -> None:
        await moderation.set_verified(session, username, not off)

    state = "no longer verified" if off else "verified"
    _change(data_dir, database_url, change, f"@{username} is {state}.")


COMMANDS = (promote, suspend, unsuspend, verify)
