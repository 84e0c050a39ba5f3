"""Password attempts are limited per account before the hash, without telling who exists."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from fastapi import FastAPI

from tests.conftest import Person
from tests.shield.conftest import AppFactory, client_from, shield_of
from townsquare.accounts import passwords, service
from townsquare.shield.hashing import HashGate, HashingBusy


@pytest.fixture
async def limited_app(shielded: AppFactory) -> FastAPI:
    return await shielded(rate_limit_login_account="3/minute")


async def _credentials(app: FastAPI) -> dict[str, str]:
    response = await client_from(app).post(
        "/api/v1/apps",
        json={"client_name": "stuffer", "redirect_uris": "urn:ietf:wg:oauth:2.0:oob"},
    )
    body = response.json()
    return {"client_id": body["client_id"], "client_secret": body["client_secret"]}


async def _attempt(app: FastAPI, n: int, username: str, creds: dict[str, str]) -> httpx.Response:
    # Each attempt from a different network: the per-address limits never see a repeat.
    return await client_from(app, f"10.{n}.0.1").post(
        "/oauth/token",
        data={"grant_type": "password", "username": username, "password": "wrong", **creds},
    )


async def test_attempts_on_one_account_from_many_addresses_are_cut_off_before_the_hash(
    limited_app: FastAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    from townsquare.state import state_of

    db = state_of(limited_app).db
    async with db.write() as session:
        await service.create_account(
            session,
            service.NewAccount(
                username="victim", email="victim@example.test", password="correct horse battery"
            ),
        )
    hashed = 0
    verify = passwords.verify_password

    def counting_verify(stored: str | None, password: str) -> bool:
        nonlocal hashed
        hashed += 1
        return verify(stored, password)

    monkeypatch.setattr(passwords, "verify_password", counting_verify)
    creds = await _credentials(limited_app)
    answers = [await _attempt(limited_app, n, "victim", creds) for n in range(5)]
    assert [a.status_code for a in answers] == [400, 400, 400, 429, 429]
    assert hashed == 3
    assert answers[3].json()["error"].startswith("Too many login attempts")
    assert int(answers[3].headers["Retry-After"]) >= 1

    # By email it is the same account, with the same budget.
    assert (await _attempt(limited_app, 9, "victim@example.test", creds)).status_code == 429

    # An account that does not exist answers exactly alike, so the limit reveals nothing.
    ghost = [await _attempt(limited_app, 20 + n, "nobody-here", creds) for n in range(5)]
    assert [a.status_code for a in ghost] == [400, 400, 400, 429, 429]
    assert ghost[0].json() == answers[0].json()
    assert ghost[3].json() == answers[3].json()


async def test_a_correct_password_still_works_for_other_accounts(
    limited_app: FastAPI, alice: Person
) -> None:
    creds = await _credentials(limited_app)
    for n in range(4):
        await _attempt(limited_app, n, "someone-else", creds)
    response = await client_from(limited_app, "10.99.0.1").post(
        "/oauth/token",
        data={
            "grant_type": "password",
            "username": "alice",
            "password": "correct horse battery",
            **creds,
        },
    )
    assert response.status_code == 200, response.text


async def test_password_hashes_wait_briefly_for_a_slot_then_are_refused() -> None:
    gate = HashGate(1, max_waiting=1, deadline=0.2)
    release = asyncio.Event()

    async def holder() -> None:
        async with gate.slot():
            await release.wait()

    holding = asyncio.create_task(holder())
    await asyncio.sleep(0)
    waiting = asyncio.create_task(_try(gate))
    await asyncio.sleep(0)
    # The queue is full: refused at once, without waiting.
    assert await _try(gate) is False
    # The one waiting gives up at the deadline...
    assert await waiting is False
    release.set()
    await holding
    # ...and once the slot is free a check goes ahead.
    assert await _try(gate) is True
    assert gate.refused == 2


async def _try(gate: HashGate) -> bool:
    try:
        async with gate.slot():
            return True
    except HashingBusy:
        return False


async def test_a_stuffing_burst_beyond_the_hashing_slots_gets_503(
    shielded: AppFactory, alice: Person
) -> None:
    app = await shielded(shield_password_hash_slots=1)
    creds = await _credentials(app)
    gate = shield_of(app).hash_gate
    release = asyncio.Event()

    async def slow_check() -> None:
        # A password check still hashing: the worker's one slot is taken.
        async with gate.slot():
            await release.wait()

    holding = asyncio.create_task(slow_check())
    await asyncio.sleep(0)
    answers = await asyncio.gather(*(_attempt(app, n, f"user{n}", creds) for n in range(6)))
    # Refused before hashing, with a hint when to retry: by the hashing gate after a short
    # wait, or by the sign-in lane (one place per hashing slot) when its deadline came first.
    assert [a.status_code for a in answers] == [503] * 6
    assert all(a.headers["Retry-After"] in ("2", "5") for a in answers)
    release.set()
    await holding
    # Once the slot is free, attempts are checked again (and fail on the wrong password).
    assert (await _attempt(app, 7, "user7", creds)).status_code == 400


async def test_a_name_just_refused_is_answered_in_front_of_the_app(limited_app: FastAPI) -> None:
    creds = await _credentials(limited_app)
    statuses = [
        (await _attempt(limited_app, 40 + n, "Stuffed", creds)).status_code for n in range(4)
    ]
    assert statuses == [400, 400, 400, 429]
    # Made-up client credentials would be refused by the app (401): the shield answers first,
    # without asking the database about the app or the name, in JSON as in a form.
    forged = {"client_id": "made-up", "client_secret": "made-up"}
    answer = await _attempt(limited_app, 50, " stuffed ", forged)
    assert answer.status_code == 429
    assert answer.json() == {"error": "Too many login attempts; try again later"}
    assert int(answer.headers["Retry-After"]) >= 1
    as_json = await client_from(limited_app, "10.51.0.1").post(
        "/oauth/token",
        json={"grant_type": "password", "username": "stuffed", "password": "x", **forged},
    )
    assert as_json.status_code == 429
    # Other names are untouched.
    assert (await _attempt(limited_app, 52, "someone-else", forged)).status_code == 401
