"""``townsquare admin``: accounts and roles, from the operator's shell."""

from __future__ import annotations

from pathlib import Path

import click

from townsquare.accounts.models import ROLES
from townsquare.cli.options import run_with_database, settings_from, storage_options
from townsquare.db.engine import Database


@click.group()
def admin() -> None:
    """Manage accounts: create them, change roles, suspend, mark as verified."""


@admin.command("create-account")
@click.argument("username")
@click.argument("email")
@click.option(
    "--password",
    prompt=True,
    hide_input=True,
    confirmation_prompt=True,
    help="The account's password; asked for when not given.",
)
@click.option(
    "--role", type=click.Choice(ROLES), default="user", show_default=True, help="Staff role."
)
@storage_options
def create_account_command(
    username: str,
    email: str,
    password: str,
    role: str,
    data_dir: Path | None,
    database_url: str | None,
) -> None:
    """Create an account that can log in at once (reserved usernames allowed)."""
    from townsquare.accounts.service import NewAccount, create_account

    settings = settings_from(data_dir, database_url)

    async def work(db: Database) -> int:
        async with db.write() as session:
            account = await create_account(
                session,
                NewAccount(username=username, email=email, password=password),
                role=role,
                reserved_ok=True,
            )
            return account.id

    account_id = run_with_database(settings, work)
    click.echo(f"Created @{username} (id {account_id}, role {role}).")
