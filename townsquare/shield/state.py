"""Everything the shield keeps for one worker process, built once by ``create_app``."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from limits import parse

from townsquare.config import Settings
from townsquare.shield import connections
from townsquare.shield.addresses import address_prefix
from townsquare.shield.cache import AnonymousCache
from townsquare.shield.collector import pace_collector
from townsquare.shield.concurrency import AdaptiveLimit, AdmissionQueue, FixedLimit
from townsquare.shield.counters import CounterStore, MemoryCounterStore
from townsquare.shield.door import Door
from townsquare.shield.hashing import HashGate
from townsquare.shield.login_names import LimitedLogins
from townsquare.shield.mode import AttackMode
from townsquare.shield.passes import PassIssuer
from townsquare.state import AppState

PRIORITY_CLASSES = ("trusted", "pass", "anonymous")
# A quarter of a worker's slots (rounded down: one at the fewest, four) are kept for requests
# with a token or session in good standing.
TRUSTED_RESERVE_DIVISOR = 4


def rate(text: str) -> tuple[int, float]:
    """``"300/5 minutes"`` as (count, period in seconds)."""
    item = parse(text)
    return item.amount, float(item.get_expiry())


@dataclass
class ShieldMetrics:
    admitted: list[int] = field(default_factory=lambda: [0, 0, 0])
    shed: list[int] = field(default_factory=lambda: [0, 0, 0])
    queued_seconds: list[float] = field(default_factory=lambda: [0.0, 0.0, 0.0])
    challenged: int = 0
    passes_issued: int = 0
    pass_limited: int = 0
    streaming_refused: int = 0
    rate_limited: dict[str, int] = field(default_factory=dict)


# Searches run at once per worker: each scans, and a flood of them (even from valid accounts)
# must leave the other slots to everything else.
EXPENSIVE_SLOTS = 2
# One of those is kept for tokens in good standing used at a person's pace (the first class,
# the ranks of the two lightest usage steps: see admission.trusted_place). A flood's own valid
# accounts are served in the first class too while they ask slowly enough, and held both
# places with their scans: a signed-in person's search waited for one of them to end.
EXPENSIVE_RESERVE_DIVISOR = 2
LIGHT_TRUSTED_BEFORE = (0, 4)
# Stream openings with a token this worker has not validated yet (a lookup each), at once.
UNSEEN_STREAM_SLOTS = 2


@dataclass
class ShieldState:
    settings: Settings
    counters: CounterStore
    limit: AdaptiveLimit
    queue: AdmissionQueue
    mode: AttackMode
    issuer: PassIssuer
    metrics: ShieldMetrics
    pass_rate: tuple[int, float]
    unknown_token_rate: tuple[int, float]
    streaming_rate: tuple[int, float]
    streaming_address_rate: tuple[int, float]
    cache: AnonymousCache | None
    hash_gate: HashGate
    limited_logins: LimitedLogins = field(default_factory=LimitedLogins)
    # Searches (and other scans) wait here too, so only a few run at once per worker.
    expensive_lane: AdmissionQueue = field(
        default_factory=lambda: AdmissionQueue(
            FixedLimit(EXPENSIVE_SLOTS), deadlines=(2.0, 1.0, 0.5), max_waiting=2_000
        )
    )
    # Stream openings with a token not validated yet, likewise.
    unseen_lane: AdmissionQueue = field(
        default_factory=lambda: AdmissionQueue(
            FixedLimit(UNSEEN_STREAM_SLOTS), deadlines=(2.0, 1.0, 0.5), max_waiting=2_000
        )
    )
    # Sign-ins without a token in good standing, likewise: only those that can hash soon
    # hold a slot.
    sign_in_lane: AdmissionQueue = field(
        default_factory=lambda: AdmissionQueue(
            FixedLimit(2), deadlines=(2.0, 1.0, 0.5), max_waiting=2_000
        )
    )

    @classmethod
    def from_settings(cls, settings: Settings, counters: CounterStore | None = None) -> ShieldState:
        limit = AdaptiveLimit(
            initial=settings.shield_initial_concurrency,
            minimum=settings.shield_min_concurrency,
            maximum=settings.shield_max_concurrency,
            tolerance=settings.shield_latency_tolerance,
            min_rtt_window=settings.shield_min_rtt_window,
        )
        queue = AdmissionQueue(
            limit,
            deadlines=(
                settings.shield_queue_deadline_trusted,
                settings.shield_queue_deadline_pass,
                settings.shield_queue_deadline_anonymous,
            ),
            max_waiting=settings.shield_queue_max,
            reserve_divisor=TRUSTED_RESERVE_DIVISOR,
        )
        if counters is None:
            counters = MemoryCounterStore()
            if settings.redis_url:
                from townsquare.shield.redis_counters import RedisCounterStore

                counters = RedisCounterStore.from_url(settings.redis_url)
        shield = cls(
            settings=settings,
            counters=counters,
            limit=limit,
            queue=queue,
            mode=AttackMode(settings),
            issuer=PassIssuer(settings),
            metrics=ShieldMetrics(),
            pass_rate=rate(settings.shield_pass_rate_limit),
            unknown_token_rate=rate(settings.shield_unknown_token_rate_limit),
            streaming_rate=rate(settings.rate_limit_streaming),
            streaming_address_rate=rate(settings.rate_limit_streaming_address),
            cache=AnonymousCache(
                ttl=settings.shield_cache_ttl,
                max_entries=settings.shield_cache_max_entries,
                extra_headers=[
                    (b"access-control-allow-origin", b"*"),
                    (b"access-control-expose-headers", b"Link, Retry-After"),
                ],
            )
            if settings.shield_cache_ttl > 0
            else None,
            hash_gate=HashGate(
                settings.shield_password_hash_slots,
                # A short wait only: a sign-in waiting here holds an admission slot.
                max_waiting=settings.shield_password_hash_slots,
                deadline=0.25,
            ),
        )
        shield.expensive_lane = AdmissionQueue(
            FixedLimit(EXPENSIVE_SLOTS),
            deadlines=queue.deadlines,
            max_waiting=queue.max_waiting,
            reserve_divisor=EXPENSIVE_RESERVE_DIVISOR,
            reserved_before=LIGHT_TRUSTED_BEFORE,
        )
        shield.unseen_lane = AdmissionQueue(
            FixedLimit(UNSEEN_STREAM_SLOTS),
            deadlines=queue.deadlines,
            max_waiting=queue.max_waiting,
        )
        # As many sign-ins as can hash at once (see HashGate): at a worker's fewest slots,
        # they still leave one to readers besides the one kept for signed-in people.
        shield.sign_in_lane = AdmissionQueue(
            FixedLimit(max(1, settings.shield_password_hash_slots)),
            deadlines=queue.deadlines,
            max_waiting=queue.max_waiting,
        )
        shield.mode.snapshot = shield.snapshot
        issuer = shield.issuer
        # The connection layer lets in a client with a valid pass while the worker lags.
        connections.pass_checker = lambda token, address: (
            issuer.check(token, address_prefix(address)) is not None
        )
        if settings.shield_enabled:
            # Full collections rarer: each one under a flood held the loop for a fraction of
            # a second.
            pace_collector()
        # Anonymous floods under attack are challenged before uvicorn parses them.
        connections.door = (
            Door(shield.mode, issuer, shield.cache, settings.shield_pow_difficulty).answer
            if settings.shield_enabled
            else None
        )
        return shield

    def snapshot(self) -> dict[str, Any]:
        """This worker's counters and current limits, for ``townsquare shield status``."""
        metrics = self.metrics
        return {
            "concurrency_limit": self.limit.limit,
            "in_flight": self.queue.in_flight,
            "min_latency_ms": round((self.limit.min_rtt or 0.0) * 1000, 2),
            "difficulty": self.difficulty,
            "admitted": dict(zip(PRIORITY_CLASSES, metrics.admitted, strict=True)),
            "shed": dict(zip(PRIORITY_CLASSES, metrics.shed, strict=True)),
            "waiting": dict(zip(PRIORITY_CLASSES, self.queue.waiting, strict=True)),
            "challenged": metrics.challenged + connections.counts.door_challenged,
            "passes_issued": metrics.passes_issued,
            "rate_limited": dict(metrics.rate_limited),
            "streaming_refused": metrics.streaming_refused,
            "cache_hits": self.cache.hits if self.cache is not None else 0,
            "logins_busy": self.hash_gate.refused,
        }

    async def aclose(self) -> None:
        close = getattr(self.counters, "aclose", None)
        if close is not None:
            await close()

    @property
    def difficulty(self) -> int:
        return self.settings.shield_pow_difficulty + self.mode.intensity


async def close_shield(state: AppState) -> None:
    """Close what the shield holds open (a connection pool to shared counters)."""
    shield = state.extras.get("shield")
    if isinstance(shield, ShieldState):
        await shield.aclose()
