"""Seeding an empty instance with a synthetic population, fast enough for benchmark sizes.

Rows go straight into the tables in large batches (no ORM, no jobs): accounts sharing one
precomputed password hash, follows, statuses with hashtags and self-threads, and the home feeds
fan-out would have produced. A token per benchmark user is written to a file.
"""

from __future__ import annotations

import datetime as dt
import random
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from townsquare.accounts.passwords import hash_password
from townsquare.config import Settings
from townsquare.db import models
from townsquare.ids import id_at
from townsquare.oauth.scopes import TOP_LEVEL
from townsquare.oauth.tokens import digest, mint_secret
from townsquare.seed.rows import TableRows
from townsquare.seed.world import DAY_MS, VISIBILITY_SHARES, SeedSize, World, build_world
from townsquare.seed.writers import BulkWriter, open_writer
from townsquare.text.html import render_html

SEED_PASSWORD = "townsquare seed password"
TEMPLATE_COUNT = 500
WORDS = (
    "the", "square", "is", "busy", "today", "people", "talk", "about", "weather", "trains",
    "music", "coffee", "a", "new", "bridge", "opens", "near", "river", "library", "hours",
    "change", "next", "week", "our", "team", "ships", "release", "tonight", "thanks",
    "everyone", "for", "help", "market", "sells", "fresh", "bread", "and", "apples", "park",
    "quiet", "this", "morning", "council", "meets", "on", "thursday", "read", "notes", "before",
    "you", "come", "along",
)  # fmt: skip
TAG_WORDS = (
    "news", "music", "coffee", "trains", "weather", "city", "art", "books", "food", "sport",
)  # fmt: skip


@dataclass
class SeedReport:
    counts: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    # (username, access token) for the first accounts, for load generators.
    tokens: list[tuple[str, str]] = field(default_factory=list)
    password: str = SEED_PASSWORD


def _dt(ms: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(ms / 1000, dt.UTC)


def tag_name(index: int) -> str:
    return f"{TAG_WORDS[index % len(TAG_WORDS)]}{index // len(TAG_WORDS) or ''}"


def username(index: int, width: int) -> str:
    return f"user{index + 1:0{width}d}"


def status_texts(rng: random.Random, settings: Settings) -> list[tuple[str, str]]:
    """Text and rendered HTML for each template; statuses pick one and may add a hashtag."""
    texts = []
    for _ in range(TEMPLATE_COUNT):
        text = " ".join(rng.choice(WORDS) for _ in range(rng.randint(4, 30))).capitalize()
        html = render_html(
            text, usernames={}, local_domain=settings.domain, base_url=settings.public_url
        )
        texts.append((text, html))
    return texts


class Seeder:
    def __init__(self, settings: Settings, size: SeedSize, writer: BulkWriter) -> None:
        self.settings = settings
        self.size = size
        self.writer = writer
        self.world: World = build_world(size, int(time.time() * 1000) - 60_000, TEMPLATE_COUNT)
        self.texts = status_texts(random.Random(size.random_seed), settings)
        self.width = max(5, len(str(size.accounts)))
        self.report = SeedReport()

    async def _insert(self, table: str, chosen: tuple[str, ...], rows: Iterator[Any]) -> None:
        target = TableRows(models.metadata.tables[table], chosen)
        self.report.counts[table] = await self.writer.insert(
            target, (target.row(*values) for values in rows)
        )

    async def run(self) -> SeedReport:
        started = time.monotonic()
        await self._insert("accounts", ACCOUNT_COLUMNS, self._accounts())
        await self._insert("follows", FOLLOW_COLUMNS, self._follows())
        await self._insert(
            "tags", ("id", "name", "name_key", "created_at", "last_status_at"), self._tags()
        )
        await self._insert("statuses", STATUS_COLUMNS, self._statuses())
        await self._insert("status_tags", ("tag_id", "status_id"), self._status_tags())
        await self._insert("home_feed", ("account_id", "status_id"), self._home_feeds())
        self.report.tokens = await self._tokens()
        await self.writer.finish()
        self.report.seconds = time.monotonic() - started
        return self.report

    def _accounts(self) -> Iterator[tuple[Any, ...]]:
        world = self.world
        password_hash = hash_password(SEED_PASSWORD)
        for index in range(self.size.accounts):
            name = username(index, self.width)
            last = world.last_status[index]
            yield (
                world.account_id(index),
                name,
                name,
                f"{name}@seed.invalid",
                password_hash,
                f"Seed user {index + 1}",
                _dt(world.account_ms[index]),
                _dt(world.account_ms[index]),
                _dt(world.status_ms(last)) if last >= 0 else None,
                world.followers_count[index],
                len(world.followees[index]),
                world.statuses_count[index],
            )

    def _follows(self) -> Iterator[tuple[Any, ...]]:
        world = self.world
        follow_ms = world.first_status_ms - DAY_MS
        number = 0
        for account, targets in enumerate(world.followees):
            account_id = world.account_id(account)
            for target in targets:
                yield (
                    id_at(follow_ms) + number,
                    account_id,
                    world.account_id(target),
                    _dt(follow_ms),
                )
                number += 1

    def _tags(self) -> Iterator[tuple[Any, ...]]:
        world = self.world
        created = _dt(world.first_status_ms)
        last_used: dict[int, int] = {}
        for index, tag in enumerate(world.tag):
            if tag >= 0:
                last_used[tag] = index
        for tag in range(self.size.tags):
            name = tag_name(tag)
            last = _dt(world.status_ms(last_used[tag])) if tag in last_used else None
            yield id_at(world.first_status_ms - DAY_MS) + tag, name, name, created, last

    def _statuses(self) -> Iterator[tuple[Any, ...]]:
        world = self.world
        base_url = self.settings.public_url
        for index in range(self.size.statuses):
            author = world.account_id(world.author[index])
            parent = world.parent[index]
            text, html = self.texts[world.template[index]]
            tag = world.tag[index]
            if tag >= 0:
                name = tag_name(tag)
                link = (
                    f'<a href="{base_url}/tags/{name}" class="mention hashtag" rel="tag">'
                    f"#<span>{name}</span></a>"
                )
                text = f"{text} #{name}"
                html = f"{html[: -len('</p>')]} {link}</p>"
            yield (
                world.status_id(index),
                author,
                world.status_id(parent) if parent >= 0 else None,
                author if parent >= 0 else None,
                world.status_id(world.thread[index]),
                text,
                html,
                VISIBILITY_SHARES[world.visibility[index]][0],
                "en",
                _dt(world.status_ms(index)),
                world.replies[index],
            )

    def _status_tags(self) -> Iterator[tuple[Any, ...]]:
        world = self.world
        tag_base = id_at(world.first_status_ms - DAY_MS)
        for index in range(self.size.statuses):
            if world.tag[index] >= 0:
                yield tag_base + world.tag[index], world.status_id(index)

    def _home_feeds(self) -> Iterator[tuple[Any, ...]]:
        world = self.world
        for account in range(self.size.accounts):
            account_id = world.account_id(account)
            for status in world.home_feed(account):
                yield account_id, world.status_id(status)

    async def _tokens(self) -> list[tuple[str, str]]:
        world = self.world
        app_id = id_at(world.first_status_ms - 2 * DAY_MS)
        scopes = " ".join(TOP_LEVEL)
        await self._insert(
            "oauth_apps",
            ("id", "name", "redirect_uris", "scopes", "client_id", "client_secret"),
            iter(
                [
                    (
                        app_id,
                        "seed",
                        "urn:ietf:wg:oauth:2.0:oob",
                        scopes,
                        mint_secret(),
                        mint_secret(),
                    )
                ]
            ),
        )
        users = min(self.size.tokens, self.size.accounts)
        secrets = [(username(index, self.width), mint_secret()) for index in range(users)]
        rows = (
            (app_id + 1 + index, digest(token), app_id, world.account_id(index), scopes)
            for index, (_, token) in enumerate(secrets)
        )
        await self._insert(
            "oauth_tokens", ("id", "token_digest", "app_id", "account_id", "scopes"), rows
        )
        return secrets


ACCOUNT_COLUMNS = (
    "id",
    "username",
    "username_key",
    "email",
    "password_hash",
    "display_name",
    "created_at",
    "updated_at",
    "last_status_at",
    "followers_count",
    "following_count",
    "statuses_count",
)
FOLLOW_COLUMNS = ("id", "account_id", "target_account_id", "created_at")
STATUS_COLUMNS = (
    "id",
    "account_id",
    "in_reply_to_id",
    "in_reply_to_account_id",
    "thread_id",
    "text",
    "content_html",
    "visibility",
    "language",
    "created_at",
    "replies_count",
)


async def seed_instance(settings: Settings, size: SeedSize, *, fast: bool) -> SeedReport:
    """Fill an empty, migrated database; refuses one that already has accounts."""
    writer = await open_writer(settings.effective_database_url, fast=fast)
    try:
        existing = await writer.scalar("SELECT count(*) FROM accounts")
        if existing:
            raise ValueError(f"the instance already has {existing} accounts; seed an empty one")
        return await Seeder(settings, size, writer).run()
    finally:
        await writer.close()
