"""Anonymous clients answered lately at a person's pace wait less than addresses never seen."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import httpx
import pytest
from fastapi import FastAPI

from tests.conftest import Person
from tests.shield.conftest import AppFactory, client_from, pin_concurrency, shield_of, under_attack
from tests.shield.test_admission import SlowUpload, until
from townsquare.shield import standing
from townsquare.shield.door import KNOWN_DISCOUNT, MIN_DIFFICULTY, puzzle_difficulty
from townsquare.shield.passes import solve
from townsquare.shield.standing import AddressHistory

READER = "198.51.100.30"
NEWCOMER = "203.0.113.40"


@pytest.fixture
def history(monkeypatch: pytest.MonkeyPatch) -> Iterator[AddressHistory]:
    """The worker's address history, empty, with no wait before a history counts."""
    standing.history.clear()
    monkeypatch.setattr(standing.history, "min_age", 0.0)
    yield standing.history
    standing.history.clear()


async def read_a_few_pages(app: FastAPI) -> None:
    async with client_from(app, READER) as reader:
        for n in range(3):
            assert (await reader.get(f"/api/v1/statuses/{n + 10}")).status_code == 404


async def order_served(
    app: FastAPI, alice: Person, first: str, second: str, passes: dict[str, str] | None = None
) -> list[str]:
    """Which of two anonymous readers is served first from a full worker, ``first`` queued
    first; each with its pass in ``passes``, if given."""
    passes = passes or {}
    waiting_class = 1 if passes else 2  # with a pass, or without
    pin_concurrency(app, 1, (5.0, 5.0, 5.0))
    shield = shield_of(app)
    upload = SlowUpload(alice)
    await until(lambda: shield.queue.in_flight == 1)
    finished: list[str] = []

    async def fetch(address: str, path: str) -> None:
        headers = {"X-Townsquare-Pass": passes[address]} if address in passes else None
        async with client_from(app, address, headers) as http:
            response = await http.get(path)
        assert response.status_code == 404
        finished.append(address)

    # Different pages: identical anonymous reads would wait for the first one's answer instead.
    one = asyncio.create_task(fetch(first, "/api/v1/statuses/1"))
    await until(lambda: shield.queue.waiting[waiting_class] == 1)
    two = asyncio.create_task(fetch(second, "/api/v1/statuses/2"))
    await until(lambda: shield.queue.waiting[waiting_class] == 2)
    assert (await upload.finish()).status_code == 200
    await asyncio.gather(one, two)
    return finished


async def test_a_reader_answered_lately_is_served_before_a_new_address(
    app: FastAPI, alice: Person, history: AddressHistory
) -> None:
    await read_a_few_pages(app)
    assert await order_served(app, alice, NEWCOMER, READER) == [READER, NEWCOMER]


async def test_a_signed_in_user_still_goes_before_a_known_anonymous_reader(
    app: FastAPI, alice: Person, bob: Person, history: AddressHistory
) -> None:
    await read_a_few_pages(app)
    standing.remember(standing.token_digest(bob.token), verified=False)
    pin_concurrency(app, 1, (5.0, 5.0, 5.0))
    shield = shield_of(app)
    upload = SlowUpload(alice)
    await until(lambda: shield.queue.in_flight == 1)
    finished: list[str] = []

    async def fetch(name: str, http: httpx.AsyncClient) -> None:
        assert (await http.get("/api/v1/statuses/1")).status_code == 404
        finished.append(name)

    reader = client_from(app, READER)
    reading = asyncio.create_task(fetch("reader", reader))
    await until(lambda: shield.queue.waiting[2] == 1)
    signed_in = asyncio.create_task(fetch("bob", bob.client))
    await until(lambda: shield.queue.waiting[0] == 1)
    assert (await upload.finish()).status_code == 200
    await asyncio.gather(reading, signed_in)
    await reader.aclose()
    assert finished == ["bob", "reader"]


async def test_an_address_flooding_loses_its_place(
    app: FastAPI, alice: Person, history: AddressHistory
) -> None:
    await read_a_few_pages(app)
    # Then it makes a few hundred requests at once, as a flood does.
    for _ in range(300):
        history.seen(READER, time.monotonic())
    # Now served in turn with addresses never seen: after the one that came first.
    assert await order_served(app, alice, NEWCOMER, READER) == [NEWCOMER, READER]


def test_a_history_takes_answers_spread_over_time_and_a_person_s_pace() -> None:
    history = AddressHistory(min_answers=3, min_age=5.0, heavy=40.0)
    # Answered three times within a second: too soon to tell.
    for t in (0.0, 0.5, 1.0):
        assert not history.seen("192.0.2.1", t)
        history.answered("192.0.2.1", t)
    assert not history.seen("192.0.2.1", 1.5)
    # Answered again after a few seconds: a history.
    history.answered("192.0.2.1", 6.0)
    assert history.seen("192.0.2.1", 7.0)
    # Forgotten when not answered for long.
    assert not history.seen("192.0.2.1", 6.0 + history.lifetime + 1)


def test_a_flood_of_new_addresses_does_not_push_out_known_ones() -> None:
    history = AddressHistory(min_answers=2, min_age=5.0, max_entries=100, max_known=10)
    history.answered("192.0.2.1", 0.0)
    history.answered("192.0.2.1", 5.0)
    for n in range(1_000):
        address = f"10.{n // 256}.{n % 256}.1"
        history.seen(address, 6.0)
        history.answered(address, 6.0)
    assert history.seen("192.0.2.1", 7.0)


async def test_a_reader_answered_lately_gets_a_smaller_puzzle_under_attack(
    shielded: AppFactory, history: AddressHistory
) -> None:
    app = await shielded(shield_pow_difficulty=16)
    await read_a_few_pages(app)
    under_attack(app)
    got = {}
    for address in (READER, NEWCOMER):
        async with client_from(app, address) as http:
            response = await http.get("/api/v1/statuses/1")
        assert response.status_code == 429
        got[address] = response.json()["challenge"]["difficulty"]
    assert got == {READER: 16 - KNOWN_DISCOUNT, NEWCOMER: 16}
    # Flooding, it pays the full price again.
    for _ in range(300):
        history.seen(READER, time.monotonic())
    async with client_from(app, READER) as http:
        response = await http.get("/api/v1/statuses/1")
    assert response.json()["challenge"]["difficulty"] == 16


def test_the_discount_never_takes_a_puzzle_below_its_floor() -> None:
    assert puzzle_difficulty(17, known=True) == 17 - KNOWN_DISCOUNT
    assert puzzle_difficulty(MIN_DIFFICULTY + 1, known=True) == MIN_DIFFICULTY
    assert puzzle_difficulty(MIN_DIFFICULTY - 2, known=True) == MIN_DIFFICULTY - 2
    assert puzzle_difficulty(17, known=False) == 17


async def test_a_known_reader_s_cheaper_pass_is_not_served_after_a_stranger_s(
    app: FastAPI, alice: Person, history: AddressHistory, monkeypatch: pytest.MonkeyPatch
) -> None:
    shield = shield_of(app)
    monkeypatch.setattr(shield.settings, "shield_pow_difficulty", 12)
    await read_a_few_pages(app)
    under_attack(app)
    passes: dict[str, str] = {}
    for address in (READER, NEWCOMER):
        async with client_from(app, address) as http:
            challenge = (await http.get("/api/v1/statuses/1")).json()["challenge"]
            nonce = solve(challenge["challenge"], challenge["difficulty"])
            earned = await http.post(
                "/api/v1/shield/pass", json={"challenge": challenge["challenge"], "nonce": nonce}
            )
        passes[address] = earned.json()["pass"]
        assert earned.json()["effort"] == (12 - KNOWN_DISCOUNT if address == READER else 12)

    # The stranger, with the dearer pass, queues first.
    assert await order_served(app, alice, NEWCOMER, READER, passes) == [READER, NEWCOMER]
