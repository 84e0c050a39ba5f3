"""Admission control: a full worker sheds late requests with 503, serving trusted users first."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable

import httpx
from fastapi import FastAPI

from tests.conftest import Person
from tests.shield.conftest import client_from, pin_concurrency, shield_of
from townsquare.oauth.tokens import digest
from townsquare.shield import connections, standing

PUBLIC = "/api/v1/statuses/1"  # any anonymous API request will do


class SlowUpload:
    """A status being posted over a slow link: it holds a slot until ``finish`` is called."""

    def __init__(self, person: Person) -> None:
        self.gate = asyncio.Event()
        self.task = asyncio.create_task(
            person.client.post(
                "/api/v1/statuses",
                content=self._body(),
                headers={"Content-Type": "application/json"},
            )
        )

    async def _body(self) -> AsyncIterator[bytes]:
        yield b'{"status": "slow'
        await self.gate.wait()
        yield b' but sure"}'

    async def finish(self) -> httpx.Response:
        self.gate.set()
        return await self.task


async def until(condition: Callable[[], bool]) -> None:
    """Wait (ten seconds at most: a busy machine is slow) for the shield to reach a state the
    test sets up."""
    async with asyncio.timeout(10.0):
        while not condition():  # noqa: ASYNC110 - the shield has no event to wait on
            await asyncio.sleep(0.005)


async def test_a_full_worker_sheds_anonymous_requests_with_503_and_retry_after(
    app: FastAPI, client: httpx.AsyncClient, alice: Person
) -> None:
    pin_concurrency(app, 1, (2.0, 1.0, 0.05))
    shield = shield_of(app)
    upload = SlowUpload(alice)
    await until(lambda: shield.queue.in_flight == 1)

    shed = await client.get(PUBLIC)
    assert shed.status_code == 503
    assert shed.headers["Retry-After"] == "5"
    assert shed.json() == {"error": "The server is too busy right now; try again shortly"}
    # Probes and the way to earn a pass are never queued.
    assert (await client.get("/healthz")).status_code == 200
    assert (await client.get("/api/v1/shield/challenge")).status_code == 200

    posted = await upload.finish()
    assert posted.status_code == 200, posted.text
    assert posted.json()["content"]
    assert (await client.get(PUBLIC)).status_code == 404
    assert shield.metrics.shed == [0, 0, 1]
    assert shield.metrics.admitted[2] >= 1


async def test_trusted_users_are_served_before_a_queue_of_anonymous_requests(
    app: FastAPI, alice: Person, bob: Person
) -> None:
    pin_concurrency(app, 1, (5.0, 5.0, 5.0))
    standing.remember(digest(bob.token), verified=False)
    shield = shield_of(app)
    upload = SlowUpload(alice)
    await until(lambda: shield.queue.in_flight == 1)

    finished: list[str] = []

    async def fetch(name: str, http: httpx.AsyncClient, path: str = PUBLIC) -> None:
        response = await http.get(path)
        assert response.status_code == 404
        finished.append(name)

    crowd = [client_from(app, f"198.51.100.{n}") for n in range(5)]
    # Different pages: identical anonymous reads would wait for the first one's answer instead.
    tasks = [
        asyncio.create_task(fetch(f"anonymous-{n}", c, f"/api/v1/statuses/{n + 1}"))
        for n, c in enumerate(crowd)
    ]
    await until(lambda: shield.queue.waiting[2] == 5)
    tasks.append(asyncio.create_task(fetch("bob", bob.client)))
    await until(lambda: shield.queue.waiting[0] == 1)

    await upload.finish()
    await asyncio.gather(*tasks)
    assert finished[0] == "bob"
    assert sorted(finished[1:]) == [f"anonymous-{n}" for n in range(5)]
    for c in crowd:
        await c.aclose()


async def test_verified_accounts_go_first_among_trusted_ones(
    app: FastAPI, alice: Person, bob: Person, carol: Person
) -> None:
    pin_concurrency(app, 1, (5.0, 5.0, 5.0))
    standing.remember(digest(bob.token), verified=False)
    standing.remember(digest(carol.token), verified=True)
    shield = shield_of(app)
    upload = SlowUpload(alice)
    await until(lambda: shield.queue.in_flight == 1)

    finished: list[str] = []

    async def fetch(person: Person) -> None:
        await person.client.get(PUBLIC)
        finished.append(person.account.username)

    first = asyncio.create_task(fetch(bob))
    await until(lambda: shield.queue.waiting[0] == 1)
    second = asyncio.create_task(fetch(carol))
    await until(lambda: shield.queue.waiting[0] == 2)
    await upload.finish()
    await asyncio.gather(first, second)
    assert finished == ["carol", "bob"]


async def test_latency_is_measured_and_shown_in_metrics(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    for _ in range(40):
        await client.get(PUBLIC)
    metrics = await client.get("/metrics")
    assert metrics.status_code == 200
    assert metrics.headers["content-type"].startswith("text/plain; version=0.0.4")
    text = metrics.text
    assert 'townsquare_shield_admitted_total{class="anonymous"} 40' in text
    assert 'townsquare_shield_shed_total{class="trusted"} 0' in text
    assert "townsquare_shield_under_attack 0" in text
    assert "# TYPE townsquare_shield_concurrency_limit gauge" in text


async def test_metrics_are_kept_from_other_addresses_unless_made_public(app: FastAPI) -> None:
    async with client_from(app, "203.0.113.9") as outsider:
        assert (await outsider.get("/metrics")).status_code == 404
    shield_of(app).settings.shield_metrics_public = True
    async with client_from(app, "203.0.113.9") as outsider:
        assert (await outsider.get("/metrics")).status_code == 200


async def test_a_slow_small_upload_does_not_hold_a_slot_while_it_trickles_in(
    app: FastAPI, client: httpx.AsyncClient, alice: Person
) -> None:
    pin_concurrency(app, 1, (2.0, 1.0, 0.05))
    shield = shield_of(app)
    gate = asyncio.Event()
    payload = b'{"status": "slow but sure"}'

    async def trickle() -> AsyncIterator[bytes]:
        yield payload[:5]
        await gate.wait()
        yield payload[5:]

    upload = asyncio.create_task(
        alice.client.post(
            "/api/v1/statuses",
            content=trickle(),
            headers={"Content-Type": "application/json", "Content-Length": str(len(payload))},
        )
    )
    await asyncio.sleep(0.05)
    assert shield.queue.in_flight == 0
    assert (await client.get(PUBLIC)).status_code == 404  # served, not shed
    gate.set()
    posted = await upload
    assert posted.status_code == 200, posted.text
    assert "slow but sure" in posted.json()["content"]


async def test_a_slow_body_with_a_declared_length_never_holds_a_slot(
    app: FastAPI, client: httpx.AsyncClient, alice: Person
) -> None:
    # Larger than the old 64 KiB pre-read, smaller than the body cap: read before queueing.
    pin_concurrency(app, 1, (2.0, 1.0, 0.5))
    shield = shield_of(app)
    gate = asyncio.Event()
    text = b'{"status": "slow and big", "spoiler_text": "' + b"x" * 70_000

    async def body() -> AsyncIterator[bytes]:
        yield text[:10]
        await gate.wait()
        yield text[10:] + b'"}'

    slow = asyncio.create_task(
        alice.client.post(
            "/api/v1/statuses",
            content=body(),
            headers={"Content-Type": "application/json", "Content-Length": str(len(text) + 2)},
        )
    )
    await asyncio.sleep(0.1)
    assert shield.queue.in_flight == 0
    assert (await client.get(PUBLIC)).status_code != 503
    gate.set()
    assert (await slow).status_code in (200, 422)


async def test_an_address_that_presents_a_valid_token_becomes_known(
    app: FastAPI, alice: Person
) -> None:
    known = connections.known_addresses
    valid = {"Authorization": f"Bearer {alice.token}"}
    async with client_from(app, "127.0.49.1", valid) as http:
        assert (await http.get("/api/v1/accounts/verify_credentials")).status_code == 200
    assert known.standing("127.0.49.1") == connections.TRUSTED

    forged = {"Authorization": "Bearer not-a-token"}
    async with client_from(app, "127.0.49.2", forged) as http:
        assert (await http.get("/api/v1/accounts/verify_credentials")).status_code == 401
    assert known.standing("127.0.49.2") == connections.UNKNOWN


async def test_opening_a_stream_waits_for_a_slot_after_tokens_in_good_standing(
    app: FastAPI, alice: Person, bob: Person
) -> None:
    standing.tokens.clear()
    standing.remember(digest(bob.token), verified=False)
    pin_concurrency(app, 1, (5.0, 5.0, 5.0))
    shield = shield_of(app)
    upload = SlowUpload(alice)
    await until(lambda: shield.queue.in_flight == 1)

    finished: list[str] = []
    forged = client_from(app, "192.0.2.9", {"Authorization": "Bearer made-up"})

    async def open_forged() -> None:
        # A token not validated yet costs a lookup: it waits for a slot in the second class,
        # and its turn comes after requests with tokens in good standing.
        response = await forged.get("/api/v1/streaming/user")
        assert response.status_code == 401
        finished.append("made-up stream")

    async def read_bob() -> None:
        response = await bob.client.get(PUBLIC)
        assert response.status_code == 404
        finished.append("bob")

    opening = asyncio.create_task(open_forged())
    await until(lambda: shield.queue.waiting[1] == 1)
    reading = asyncio.create_task(read_bob())
    await until(lambda: shield.queue.waiting[0] == 1)
    assert (await upload.finish()).status_code == 200
    await asyncio.gather(opening, reading)
    assert finished == ["bob", "made-up stream"]
    # The opening gave its slot back once it was answered.
    assert shield.queue.in_flight == 0
    await forged.aclose()


async def test_a_token_found_invalid_waits_for_no_slot_to_be_refused_again(
    app: FastAPI, alice: Person
) -> None:
    standing.tokens.clear()
    forged = client_from(app, "192.0.2.9", {"Authorization": "Bearer made-up"})
    assert (await forged.get("/api/v1/streaming/user")).status_code == 401
    pin_concurrency(app, 1, (0.05, 0.05, 0.05))
    shield = shield_of(app)
    upload = SlowUpload(alice)
    await until(lambda: shield.queue.in_flight == 1)
    assert (await forged.get("/api/v1/streaming/user")).status_code == 401
    # An opening that cannot get a slot in time is shed with 503.
    other = client_from(app, "192.0.2.10", {"Authorization": "Bearer also-made-up"})
    shed = await other.get("/api/v1/streaming/user")
    assert shed.status_code == 503
    assert shed.headers["Retry-After"] == "2"
    assert shed.json() == {"error": "The server is too busy right now; try again shortly"}
    assert (await upload.finish()).status_code == 200
    await forged.aclose()
    await other.aclose()


async def test_a_token_making_far_more_requests_than_a_person_waits_behind_people(
    app: FastAPI, alice: Person, bob: Person, carol: Person
) -> None:
    standing.tokens.clear()
    standing.usage.clear()
    for person in (bob, carol):
        standing.remember(digest(person.token), verified=False)
    # Carol's token has just made a few hundred requests on this worker (an account lent to a
    # flood does that); Bob made none.
    for _ in range(300):
        standing.usage.add(digest(carol.token), time.monotonic())
    pin_concurrency(app, 1, (5.0, 5.0, 5.0))
    shield = shield_of(app)
    upload = SlowUpload(alice)
    await until(lambda: shield.queue.in_flight == 1)

    finished: list[str] = []

    async def fetch(name: str, person: Person) -> None:
        response = await person.client.get(PUBLIC)
        assert response.status_code == 404
        finished.append(name)

    first = asyncio.create_task(fetch("carol", carol))
    # Served after everyone else, anonymous requests included.
    await until(lambda: shield.queue.waiting[2] == 1)
    second = asyncio.create_task(fetch("bob", bob))
    await until(lambda: shield.queue.waiting[0] == 1)
    assert (await upload.finish()).status_code == 200
    await asyncio.gather(first, second)
    assert finished == ["bob", "carol"]
    standing.usage.clear()


async def test_only_a_few_searches_run_at_once_and_other_requests_go_on(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    pin_concurrency(app, 8, (0.05, 0.05, 0.05))
    shield = shield_of(app)
    lane = shield.expensive_lane
    lane.deadlines = shield.queue.deadlines
    # Searches already running fill the lane (two per worker).
    for _ in range(lane.limit.limit):
        await lane.acquire(0)
    try:
        shed = await client.get("/api/v2/search", params={"q": "cats"})
        assert shed.status_code == 503
        assert shed.json() == {"error": "The server is too busy right now; try again shortly"}
        # Other requests are served: the worker's slots are free.
        assert (await client.get(PUBLIC)).status_code == 404
    finally:
        for _ in range(lane.limit.limit):
            lane.release()
    assert (await client.get("/api/v2/search", params={"q": "cats"})).status_code == 200


async def test_a_place_among_the_searches_is_kept_for_signed_in_people(
    app: FastAPI, alice: Person
) -> None:
    shield = shield_of(app)
    lane = shield.expensive_lane
    standing.remember(digest(alice.token), verified=False)
    # A flood's own valid accounts, asking more than a person does, hold one place and wait
    # for the other.
    await lane.acquire(0, 6)
    waiting = asyncio.create_task(lane.acquire(0, 6))
    try:
        await until(lambda: lane.waiting[0] == 1)
        # A signed-in person's search takes the place kept for people.
        found = await alice.client.get("/api/v2/search", params={"q": "cats"})
        assert found.status_code == 200, found.text
        assert lane.waiting[0] == 1
    finally:
        lane.release()
        await asyncio.wait_for(waiting, 1)
        lane.release()
        standing.usage.clear()


async def test_sign_ins_without_a_token_wait_behind_anonymous_reads(
    app: FastAPI, alice: Person
) -> None:
    pin_concurrency(app, 1, (5.0, 5.0, 5.0))
    shield = shield_of(app)
    upload = SlowUpload(alice)
    await until(lambda: shield.queue.in_flight == 1)

    finished: list[str] = []

    async def sign_in() -> None:
        http = client_from(app, "198.51.100.20")
        response = await http.post(
            "/oauth/token",
            data={"grant_type": "password", "username": "alice", "password": "a guess"},
        )
        assert response.status_code in (400, 401)
        finished.append("sign-in")
        await http.aclose()

    async def read() -> None:
        http = client_from(app, "198.51.100.21")
        assert (await http.get(PUBLIC)).status_code == 404
        finished.append("read")
        await http.aclose()

    signing_in = asyncio.create_task(sign_in())
    await until(lambda: shield.queue.waiting[2] == 1)
    reading = asyncio.create_task(read())
    await until(lambda: shield.queue.waiting[2] == 2)
    assert (await upload.finish()).status_code == 200
    await asyncio.gather(signing_in, reading)
    assert finished == ["read", "sign-in"]


async def test_only_a_few_streams_with_unseen_tokens_are_opened_at_once(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    standing.tokens.clear()
    pin_concurrency(app, 8, (0.05, 0.05, 0.05))
    shield = shield_of(app)
    lane = shield.unseen_lane
    lane.deadlines = shield.queue.deadlines
    # Openings with made-up tokens already being looked up fill the lane.
    for _ in range(lane.limit.limit):
        await lane.acquire(1)
    forged = client_from(app, "192.0.2.11", {"Authorization": "Bearer made-up-too"})
    try:
        shed = await forged.get("/api/v1/streaming/user")
        assert shed.status_code == 503
        assert shed.headers["Retry-After"] == "2"
        # Everything else is served: the worker's slots are free.
        assert (await client.get(PUBLIC)).status_code == 404
    finally:
        for _ in range(lane.limit.limit):
            lane.release()
    # Once a place is free the token is looked up (and found wanting), and gives it back.
    assert (await forged.get("/api/v1/streaming/user")).status_code == 401
    assert lane.in_flight == 0
    await forged.aclose()


async def test_only_a_few_sign_ins_hold_slots_and_other_requests_go_on(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    pin_concurrency(app, 8, (0.05, 0.05, 0.05))
    shield = shield_of(app)
    lane = shield.sign_in_lane
    lane.deadlines = shield.queue.deadlines
    # Sign-ins already hashing or about to fill the lane.
    for _ in range(lane.limit.limit):
        await lane.acquire(2)
    try:
        shed = await client.post(
            "/oauth/token", data={"grant_type": "password", "username": "a", "password": "b"}
        )
        assert shed.status_code == 503
        assert shed.json() == {"error": "The server is too busy right now; try again shortly"}
        assert shield.queue.in_flight == 0
        # Other requests are served: the worker's slots are free.
        assert (await client.get(PUBLIC)).status_code == 404
    finally:
        for _ in range(lane.limit.limit):
            lane.release()
    answer = await client.post(
        "/oauth/token", data={"grant_type": "password", "username": "a", "password": "b"}
    )
    assert answer.status_code not in (500, 503)
    assert lane.in_flight == 0
