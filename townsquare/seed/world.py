"""A synthetic instance, decided in memory before anything is written.

Popularity and activity are skewed the way real networks are (a few accounts have most of the
followers, a few write most of the statuses), so a large seed has authors above the fan-out pull
threshold and home timelines of very different lengths. Everything comes from one random seed,
so the same options give the same instance.
"""

from __future__ import annotations

import random
from array import array
from bisect import bisect_left
from collections import deque
from dataclasses import dataclass, field
from itertools import accumulate

from townsquare.ids import id_at

DAY_MS = 86_400_000
POPULARITY_SKEW = 0.9
ACTIVITY_SKEW = 0.7
SELF_REPLY_SHARE = 0.05
TAGGED_SHARE = 0.1
VISIBILITY_SHARES = (("public", 0.85), ("unlisted", 0.10), ("private", 0.05))


@dataclass(frozen=True)
class SeedSize:
    accounts: int
    statuses: int
    follows_per_account: int
    tokens: int = 100
    home_feed_length: int = 400
    tags: int = 50
    days: int = 30
    random_seed: int = 1
    pull_threshold: int = 5_000

    def __post_init__(self) -> None:
        if self.accounts < 1:
            raise ValueError("at least one account is needed")
        if self.statuses < 0 or self.follows_per_account < 0 or self.tokens < 0:
            raise ValueError("counts cannot be negative")
        if not 1 <= self.tags <= 1000:
            raise ValueError("tags must be between 1 and 1000")
        if self.follows_per_account >= self.accounts:
            raise ValueError("follows per account must be fewer than the accounts")


def _zipf_cumulative(count: int, skew: float) -> list[float]:
    return list(accumulate(1.0 / (rank + 1) ** skew for rank in range(count)))


@dataclass
class World:
    """Who exists, who follows whom, and who wrote what, by index (0-based)."""

    size: SeedSize
    now_ms: int
    account_ms: list[int] = field(default_factory=list)
    followees: list[array[int]] = field(default_factory=list)
    followers_count: array[int] = field(default_factory=lambda: array("i"))
    # Per status: author, the status it continues (-1 for none), its thread root, tag (-1 none),
    # visibility index and text template.
    author: array[int] = field(default_factory=lambda: array("i"))
    parent: array[int] = field(default_factory=lambda: array("i"))
    thread: array[int] = field(default_factory=lambda: array("i"))
    tag: array[int] = field(default_factory=lambda: array("h"))
    visibility: array[int] = field(default_factory=lambda: array("b"))
    template: array[int] = field(default_factory=lambda: array("i"))
    replies: bytearray = field(default_factory=bytearray)
    statuses_count: array[int] = field(default_factory=lambda: array("i"))
    last_status: array[int] = field(default_factory=lambda: array("i"))
    recent: list[deque[int]] = field(default_factory=list)

    @property
    def first_status_ms(self) -> int:
        return self.now_ms - self.size.days * DAY_MS

    def account_id(self, index: int) -> int:
        return id_at(self.account_ms[index]) | (index & 0xFFFF)

    def status_ms(self, index: int) -> int:
        span = self.now_ms - self.first_status_ms
        return self.first_status_ms + index * span // max(self.size.statuses, 1)

    def status_id(self, index: int) -> int:
        # Several statuses may share a millisecond; the low bits keep their ids apart and ordered.
        return id_at(self.status_ms(index)) | (index & 0xFFFF)

    def is_pulled(self, account: int) -> bool:
        return self.followers_count[account] >= self.size.pull_threshold

    def home_feed(self, account: int) -> list[int]:
        """Status indexes in ``account``'s materialised home feed, oldest first."""
        sources = [account, *(f for f in self.followees[account] if not self.is_pulled(f))]
        candidates: list[int] = []
        for source in sources:
            candidates.extend(self.recent[source])
        candidates.sort()
        return candidates[-self.size.home_feed_length :]


def build_world(size: SeedSize, now_ms: int, templates: int) -> World:
    rng = random.Random(size.random_seed)
    world = World(size=size, now_ms=now_ms)
    n = size.accounts

    # Accounts join over the thirty days before the first status.
    joined_from = world.first_status_ms - 30 * DAY_MS
    world.account_ms = sorted(rng.randrange(joined_from, world.first_status_ms) for _ in range(n))

    popularity = list(range(n))
    rng.shuffle(popularity)
    popular_weights = _zipf_cumulative(n, POPULARITY_SKEW)
    world.followers_count = array("i", bytes(4 * n))
    for account in range(n):
        chosen: set[int] = set()
        while len(chosen) < size.follows_per_account:
            draws = rng.choices(
                popularity, cum_weights=popular_weights, k=size.follows_per_account * 2
            )
            for target in draws:
                if target != account and len(chosen) < size.follows_per_account:
                    chosen.add(target)
        targets = array("i", sorted(chosen))
        world.followees.append(targets)
        for target in targets:
            world.followers_count[target] += 1

    activity = list(range(n))
    rng.shuffle(activity)
    active_weights = _zipf_cumulative(n, ACTIVITY_SKEW)
    visibility_weights = list(accumulate(share for _, share in VISIBILITY_SHARES))
    world.statuses_count = array("i", bytes(4 * n))
    world.last_status = array("i", [-1]) * n
    world.recent = [deque(maxlen=size.home_feed_length) for _ in range(n)]
    world.replies = bytearray(size.statuses)
    total = active_weights[-1]
    for index in range(size.statuses):
        author = activity[bisect_left(active_weights, rng.random() * total)]
        previous = world.last_status[author]
        parent = previous if previous >= 0 and rng.random() < SELF_REPLY_SHARE else -1
        world.author.append(author)
        world.parent.append(parent)
        world.thread.append(world.thread[parent] if parent >= 0 else index)
        if parent >= 0:
            world.replies[parent] = 1
        world.tag.append(rng.randrange(size.tags) if rng.random() < TAGGED_SHARE else -1)
        visibility = bisect_left(visibility_weights, rng.random() * visibility_weights[-1])
        world.visibility.append(min(visibility, len(VISIBILITY_SHARES) - 1))
        world.template.append(rng.randrange(templates))
        world.statuses_count[author] += 1
        world.last_status[author] = index
        world.recent[author].append(index)
    return world
