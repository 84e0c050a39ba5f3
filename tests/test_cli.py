"""The ``townsquare`` command: migrate, admin and seed, against SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner, Result
from sqlalchemy import func, select

from townsquare.accounts.models import Account
from townsquare.accounts.passwords import verify_password
from townsquare.cli import main
from townsquare.config import Settings
from townsquare.db.engine import Database
from townsquare.db.migrate import current_revision_sync, head_revision
from townsquare.graph.models import Follow
from townsquare.statuses.models import Status
from townsquare.timelines.models import HomeFeedEntry

# Commands export their options as TOWNSQUARE_* variables for worker processes; listing the
# variables here makes the runner put them back afterwards.
CLEAN_ENV: dict[str, str | None] = {
    "TOWNSQUARE_DATA_DIR": None,
    "TOWNSQUARE_DATABASE_URL": None,
}


def run(*args: str, input: str | None = None) -> Result:
    return CliRunner(env=CLEAN_ENV).invoke(main, list(args), input=input)


def storage_args(settings: Settings) -> list[str]:
    return ["--data-dir", str(settings.data_dir), "--database-url", settings.database_url]


async def run_async(*args: str, input: str | None = None) -> Result:
    """Commands run their own event loop, so from an async test they run in a thread."""
    return await asyncio.to_thread(run, *args, input=input)


async def load_account(settings: Settings, username: str) -> Account | None:
    db = Database(settings.effective_database_url)
    try:
        async with db.read() as session:
            return await session.scalar(select(Account).where(Account.username_key == username))
    finally:
        await db.dispose()


def test_help_lists_every_command() -> None:
    result = run("--help")
    assert result.exit_code == 0
    for command in ("serve", "migrate", "admin", "seed", "shield"):
        assert command in result.output
    admin_help = run("admin", "--help").output
    for command in ("create-account", "promote", "suspend", "unsuspend", "verify"):
        assert command in admin_help


def test_migrate_brings_a_new_data_dir_to_the_head_revision(tmp_path: Path) -> None:
    result = run("migrate", "--data-dir", str(tmp_path / "var"))
    assert result.exit_code == 0, result.output
    url = f"sqlite+aiosqlite:///{tmp_path / 'var' / 'townsquare.sqlite3'}"
    assert current_revision_sync(url) == head_revision()


async def test_create_account_with_a_prompted_password(settings: Settings) -> None:
    result = await run_async(
        "admin",
        "create-account",
        "Admin",
        "admin@example.org",
        "--role",
        "admin",
        *storage_args(settings),
        input="a long password\na long password\n",
    )
    assert result.exit_code == 0, result.output
    account = await load_account(settings, "admin")
    assert account is not None
    assert account.role == "admin"
    assert verify_password(account.password_hash, "a long password")


async def test_create_account_rejects_bad_input_and_writes_nothing(settings: Settings) -> None:
    result = await run_async(
        "admin",
        "create-account",
        "no spaces allowed",
        "not-an-email",
        "--password",
        "short",
        *storage_args(settings),
    )
    assert result.exit_code == 1
    assert "username" in result.output and "email" in result.output
    assert await load_account(settings, "no spaces allowed") is None


async def test_promote_suspend_and_verify(settings: Settings) -> None:
    args = storage_args(settings)
    created = await run_async(
        "admin", "create-account", "dana", "dana@example.org", "--password", "pass word 1", *args
    )
    assert created.exit_code == 0, created.output

    assert (await run_async("admin", "promote", "dana", "moderator", *args)).exit_code == 0
    assert (await run_async("admin", "verify", "dana", *args)).exit_code == 0
    assert (await run_async("admin", "suspend", "dana", *args)).exit_code == 0
    account = await load_account(settings, "dana")
    assert account is not None
    assert (account.role, account.verified, account.is_suspended) == ("moderator", True, True)

    assert (await run_async("admin", "unsuspend", "dana", *args)).exit_code == 0
    assert (await run_async("admin", "verify", "dana", "--off", *args)).exit_code == 0
    account = await load_account(settings, "dana")
    assert account is not None
    assert (account.verified, account.is_suspended) == (False, False)

    unknown = await run_async("admin", "promote", "nobody", "admin", *args)
    assert unknown.exit_code != 0
    assert "Traceback" not in unknown.output


async def test_seed_builds_a_consistent_instance_that_serves_home_timelines(
    settings: Settings, client: httpx.AsyncClient, tmp_path: Path
) -> None:
    tokens_file = tmp_path / "tokens.txt"
    result = await run_async(
        "seed",
        "--accounts",
        "60",
        "--statuses",
        "900",
        "--follows-per-account",
        "8",
        "--tokens",
        "3",
        "--tokens-file",
        str(tokens_file),
        *storage_args(settings),
    )
    assert result.exit_code == 0, result.output

    db = Database(settings.effective_database_url)
    try:
        async with db.read() as session:
            assert await session.scalar(select(func.count()).select_from(Account)) == 60
            assert await session.scalar(select(func.count()).select_from(Status)) == 900
            assert await session.scalar(select(func.count()).select_from(Follow)) == 60 * 8
            # Stored counters agree with the rows.
            followers = dict(
                (
                    await session.execute(
                        select(Follow.target_account_id, func.count()).group_by(
                            Follow.target_account_id
                        )
                    )
                ).all()
            )
            for account in (await session.scalars(select(Account))).all():
                assert account.followers_count == followers.get(account.id, 0)
                assert account.following_count == 8
            first = await session.scalar(select(Account).where(Account.username == "user00001"))
            assert first is not None
            feed = set(
                (
                    await session.scalars(
                        select(HomeFeedEntry.status_id).where(HomeFeedEntry.account_id == first.id)
                    )
                ).all()
            )
    finally:
        await db.dispose()

    lines = tokens_file.read_text().splitlines()
    assert len(lines) == 3
    username, token = lines[0].split()
    assert username == "user00001"
    response = await client.get(
        "/api/v1/timelines/home?limit=40", headers={"Authorization": f"Bearer {token}"}
    )
    assert response.status_code == 200, response.text
    timeline = response.json()
    assert timeline, "a seeded account has a home timeline"
    assert {int(status["id"]) for status in timeline} <= feed
    ids = [int(status["id"]) for status in timeline]
    assert ids == sorted(ids, reverse=True)

    tagged = await client.get("/api/v1/timelines/tag/news?limit=5")
    assert tagged.status_code == 200, tagged.text
    assert tagged.json(), "seeded statuses carry hashtags"
    assert all("#<span>news</span>" in status["content"] for status in tagged.json())

    again = await run_async(
        "seed", "--accounts", "5", "--follows-per-account", "0", *storage_args(settings)
    )
    assert again.exit_code == 1
    assert "already has 60 accounts" in again.output


@pytest.mark.parametrize(
    "option", [["--accounts", "0"], ["--accounts", "3", "--follows-per-account", "3"]]
)
def test_seed_rejects_impossible_sizes(option: list[str], tmp_path: Path) -> None:
    result = run("seed", *option, "--data-dir", str(tmp_path))
    assert result.exit_code == 2
    assert "Traceback" not in result.output


def test_admin_works_on_a_brand_new_data_dir(tmp_path: Path) -> None:
    result = run(
        "admin",
        "create-account",
        "first",
        "first@example.org",
        "--password",
        "a long password",
        "--data-dir",
        str(tmp_path / "new"),
    )
    assert result.exit_code == 0, result.output
    assert "Created @first" in result.output
