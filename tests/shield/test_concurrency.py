"""The adaptive limit follows latency; the queue serves the highest class first and sheds late."""

from __future__ import annotations

import asyncio

import pytest

from townsquare.shield.concurrency import AdaptiveLimit, AdmissionQueue, Shed


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def adaptive(clock: Clock, initial: int = 20) -> AdaptiveLimit:
    return AdaptiveLimit(
        initial=initial,
        minimum=2,
        maximum=200,
        tolerance=0.5,
        min_rtt_window=30.0,
        interval=0.25,
        min_samples=4,
        clock=clock,
    )


def feed(limit: AdaptiveLimit, clock: Clock, latency: float, rounds: int) -> None:
    for _ in range(rounds):
        clock.now += 0.3
        for _ in range(10):
            limit.record(latency, in_flight=limit.limit)


def test_limit_grows_while_latency_stays_near_its_minimum() -> None:
    clock = Clock()
    limit = adaptive(clock)
    feed(limit, clock, 0.020, rounds=10)
    assert limit.limit > 40
    assert limit.min_rtt == pytest.approx(0.020)


def test_limit_shrinks_when_latency_rises_and_recovers_after() -> None:
    clock = Clock()
    limit = adaptive(clock, initial=100)
    feed(limit, clock, 0.020, rounds=3)
    before = limit.limit
    feed(limit, clock, 0.200, rounds=4)  # ten times slower: the database is drowning
    assert limit.limit < before / 4
    assert limit.limit >= 2
    low = limit.limit
    feed(limit, clock, 0.020, rounds=5)
    assert limit.limit > low


def test_limit_does_not_grow_when_it_is_not_reached() -> None:
    clock = Clock()
    limit = adaptive(clock)
    for _ in range(20):
        clock.now += 0.3
        for _ in range(10):
            limit.record(0.010, in_flight=1)
    assert limit.limit == 20


def fixed_queue(
    slots: int, deadlines: tuple[float, float, float], max_waiting: int = 100
) -> AdmissionQueue:
    limit = adaptive(Clock(), initial=slots)
    limit.minimum = limit.maximum = limit.limit = slots
    return AdmissionQueue(limit, deadlines=deadlines, max_waiting=max_waiting)


async def test_free_slots_are_taken_at_once() -> None:
    queue = fixed_queue(2, (1, 1, 1))
    assert await queue.acquire(2) == 0.0
    assert await queue.acquire(2) == 0.0
    assert queue.in_flight == 2


async def test_waiters_are_served_by_class_then_rank_then_arrival() -> None:
    queue = fixed_queue(1, (5, 5, 5))
    await queue.acquire(0)
    order: list[str] = []

    async def wait(name: str, priority: int, rank: int = 0) -> None:
        await queue.acquire(priority, rank)
        order.append(name)
        queue.release()

    tasks = [
        asyncio.create_task(wait("anonymous", 2)),
        asyncio.create_task(wait("pass-easy", 1, rank=-8)),
        asyncio.create_task(wait("pass-hard", 1, rank=-20)),
        asyncio.create_task(wait("trusted-1", 0)),
        asyncio.create_task(wait("trusted-2", 0)),
    ]
    await asyncio.sleep(0.01)
    assert queue.waiting == [2, 2, 1]
    queue.release()
    await asyncio.gather(*tasks)
    assert order == ["trusted-1", "trusted-2", "pass-hard", "pass-easy", "anonymous"]
    assert queue.in_flight == 0
    assert queue.waiting == [0, 0, 0]


async def test_a_request_that_waits_past_its_deadline_is_shed_and_frees_nothing() -> None:
    queue = fixed_queue(1, (5, 5, 0.05))
    await queue.acquire(0)
    with pytest.raises(Shed):
        await queue.acquire(2)
    assert queue.waiting == [0, 0, 0]
    # The busy slot is still the only one in use, and the next caller can still get it.
    queue.release()
    assert queue.in_flight == 0
    assert await queue.acquire(2) == 0.0


async def test_a_full_queue_sheds_at_once() -> None:
    queue = fixed_queue(1, (5, 5, 5), max_waiting=1)
    await queue.acquire(0)
    waiting = asyncio.create_task(queue.acquire(2))
    await asyncio.sleep(0.01)
    with pytest.raises(Shed):
        await queue.acquire(2)
    # Other classes have queues of their own.
    trusted = asyncio.create_task(queue.acquire(0))
    await asyncio.sleep(0.01)
    assert queue.waiting == [1, 0, 1]
    waiting.cancel()
    trusted.cancel()
    await asyncio.gather(waiting, trusted, return_exceptions=True)
    assert queue.waiting == [0, 0, 0]
    queue.release()
    assert queue.in_flight == 0


async def test_a_share_of_the_slots_is_kept_for_the_first_class() -> None:
    queue = fixed_queue(4, (5, 5, 5))
    queue.reserve_divisor = 4
    for _ in range(3):
        assert await queue.acquire(2) == 0.0
    # The last slot is kept for a signed-in person's request: others wait for theirs.
    anonymous = asyncio.create_task(queue.acquire(2))
    passing = asyncio.create_task(queue.acquire(1))
    await asyncio.sleep(0.01)
    assert queue.waiting == [0, 1, 1]
    await asyncio.wait_for(queue.acquire(0), 1)
    assert queue.in_flight == 4
    # A slot given back while the kept one is held: still no room for the other classes.
    queue.release()
    await asyncio.sleep(0.01)
    assert queue.waiting == [0, 1, 1] and queue.in_flight == 3
    # Once the signed-in request is done, the next in line (the pass) goes.
    queue.release()
    await asyncio.wait_for(passing, 1)
    assert queue.waiting == [0, 0, 1] and queue.in_flight == 3
    queue.release()
    await asyncio.wait_for(anonymous, 1)
    assert queue.waiting == [0, 0, 0] and queue.in_flight == 3


async def test_the_kept_share_may_go_to_the_first_ranks_of_a_class() -> None:
    queue = fixed_queue(2, (5, 5, 5))
    queue.reserve_divisor = 2
    queue.reserved_before = (0, 4)
    assert await queue.acquire(0, 6) == 0.0
    # The second slot is kept for requests ranked before 4 in the first class.
    heavy = asyncio.create_task(queue.acquire(0, 6))
    await asyncio.sleep(0.01)
    assert queue.waiting == [1, 0, 0]
    await asyncio.wait_for(queue.acquire(0, 1), 1)
    assert queue.in_flight == 2
    queue.release()
    await asyncio.sleep(0.01)
    assert queue.waiting == [1, 0, 0] and queue.in_flight == 1
    queue.release()
    await asyncio.wait_for(heavy, 1)
    assert queue.waiting == [0, 0, 0] and queue.in_flight == 1


async def test_a_single_slot_is_never_kept() -> None:
    queue = fixed_queue(1, (5, 5, 5))
    queue.reserve_divisor = 4
    assert await queue.acquire(2) == 0.0
