"""``townsquare seed``: a synthetic instance for benchmarks and demos."""

from __future__ import annotations

import asyncio
from pathlib import Path

import click

from townsquare.cli.options import settings_from, storage_options
from townsquare.db.migrate import upgrade


@click.command()
@click.option("--accounts", default=1_000, show_default=True, type=click.IntRange(1))
@click.option("--statuses", default=20_000, show_default=True, type=click.IntRange(0))
@click.option("--follows-per-account", default=50, show_default=True, type=click.IntRange(0))
@click.option(
    "--tokens",
    default=100,
    show_default=True,
    type=click.IntRange(0),
    help="How many accounts get an access token in the tokens file.",
)
@click.option(
    "--tokens-file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Where to write 'username token' lines [default: DATA_DIR/seed-tokens.txt].",
)
@click.option(
    "--home-feed-length",
    default=400,
    show_default=True,
    type=click.IntRange(1),
    help="Newest statuses kept in each seeded home feed.",
)
@click.option("--random-seed", default=1, show_default=True, help="Same seed, same instance.")
@click.option(
    "--fast",
    is_flag=True,
    help="SQLite: journal and sync off while seeding (a crash mid-way ruins the database).",
)
@storage_options
def seed(
    accounts: int,
    statuses: int,
    follows_per_account: int,
    tokens: int,
    tokens_file: Path | None,
    home_feed_length: int,
    random_seed: int,
    fast: bool,
    data_dir: Path | None,
    database_url: str | None,
) -> None:
    """Fill an empty instance with synthetic accounts, follows, statuses and home feeds.

    Every account's password is the same (printed at the end); the tokens file lists a
    ready access token for the first accounts, for load generators.
    """
    from townsquare.seed import SeedSize, seed_instance

    settings = settings_from(data_dir, database_url)
    try:
        size = SeedSize(
            accounts=accounts,
            statuses=statuses,
            follows_per_account=follows_per_account,
            tokens=tokens,
            home_feed_length=home_feed_length,
            random_seed=random_seed,
            pull_threshold=settings.fanout_pull_threshold,
        )
    except ValueError as error:
        raise click.BadParameter(str(error)) from error
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    upgrade(settings.effective_database_url)
    target = tokens_file or settings.data_dir / "seed-tokens.txt"
    try:
        report = asyncio.run(seed_instance(settings, size, fast=fast))
    except ValueError as error:
        raise click.ClickException(str(error)) from error
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text("".join(f"{name} {token}\n" for name, token in report.tokens))
    for table, count in report.counts.items():
        click.echo(f"{table:>12}: {count:>10,} rows")
    click.echo(f"Seeded in {report.seconds:.1f} s. Password for every account: {report.password!r}")
    click.echo(f"Tokens for {len(report.tokens)} accounts: {target}")
