"""Sliding-window counters: exact at the edges, forgiving as windows slide, bounded in memory."""

from __future__ import annotations

from townsquare.shield.addresses import address_prefix
from townsquare.shield.counters import MemoryCounterStore


class Clock:
    def __init__(self, now: float = 1_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


async def test_counts_up_to_the_limit_then_refuses_until_the_window_slides() -> None:
    clock = Clock()
    store = MemoryCounterStore(clock=clock)
    verdicts = [await store.acquire("k", 3, 60) for _ in range(4)]
    assert [v.allowed for v in verdicts] == [True, True, True, False]
    assert [v.remaining for v in verdicts[:3]] == [2, 1, 0]
    assert verdicts[3].reset_at == 1_000_020.0  # 1_000_000 // 60 * 60 + 60

    # Half-way through the next window, half of the last window still counts.
    clock.now = 1_000_020.0 + 30
    assert (await store.acquire("k", 3, 60)).allowed
    assert not (await store.acquire("k", 3, 60)).allowed
    # Two windows later the past is forgotten.
    clock.now += 120
    assert (await store.peek("k", 3, 60)).remaining == 3


async def test_keys_are_counted_apart() -> None:
    store = MemoryCounterStore(clock=Clock())
    assert (await store.acquire("a", 1, 60)).allowed
    assert not (await store.acquire("a", 1, 60)).allowed
    assert (await store.acquire("b", 1, 60)).allowed


async def test_memory_stays_bounded_under_a_flood_of_keys() -> None:
    clock = Clock()
    store = MemoryCounterStore(max_keys=1000, clock=clock)
    for n in range(5000):
        await store.acquire(f"address-{n}", 10, 60)
    assert len(store) <= 1000
    clock.now += 600
    await store.acquire("late", 10, 60)
    for n in range(999):
        await store.acquire(f"again-{n}", 10, 60)
    assert len(store) <= 1000


def test_prefixes_group_neighbouring_addresses() -> None:
    assert address_prefix("203.0.113.7") == address_prefix("203.0.113.200") == "203.0.113.0/24"
    assert address_prefix("203.0.114.7") != address_prefix("203.0.113.7")
    assert address_prefix("2001:db8:1:2::5") == "2001:db8:1::/48"
    assert address_prefix("::ffff:198.51.100.9") == "198.51.100.0/24"
    assert address_prefix("not-an-address") == "not-an-address"
