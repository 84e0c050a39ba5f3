"""A flood, end to end: shedding switches under-attack mode on; logged-in users stay served."""

from __future__ import annotations

import asyncio

import httpx
from fastapi import FastAPI

from tests.conftest import Person
from tests.shield.conftest import client_from, pin_concurrency, shield_of
from tests.shield.test_admission import PUBLIC, SlowUpload, until
from townsquare.oauth.tokens import digest
from townsquare.shield import standing


async def test_a_flood_turns_attack_mode_on_and_off_again(
    app: FastAPI, client: httpx.AsyncClient, alice: Person, bob: Person
) -> None:
    shield = shield_of(app)
    mode = shield.mode
    # The mode's own clock, moved by hand: its windows pass when the test says so.
    now = [0.0]
    mode.clock = lambda: now[0]
    mode._window_started = mode._choice_read_at = 0.0
    mode.window, mode.min_requests, mode.quiet_period = 0.2, 5, 0.6
    pin_concurrency(app, 1, (3.0, 1.0, 0.02))
    standing.remember(digest(bob.token), verified=False)

    upload = SlowUpload(alice)
    await until(lambda: shield.queue.in_flight == 1)
    flood = [client_from(app, f"198.51.100.{n}") for n in range(20)]
    answers = await asyncio.gather(*(c.get(PUBLIC) for c in flood))
    assert {a.status_code for a in answers} == {503}
    now[0] = 0.25
    assert mode.active
    assert mode.activations == 1

    # From now on the flood is turned away before it waits for anything...
    refused = await flood[0].get(PUBLIC)
    assert refused.status_code == 429
    assert "challenge" in refused.json()
    # ...while a logged-in user waits for the busy slot and is served.
    served = asyncio.create_task(bob.client.get("/api/v1/accounts/verify_credentials"))
    await until(lambda: shield.queue.waiting[0] == 1)
    await upload.finish()
    assert (await served).status_code == 200

    now[0] = 0.95
    assert not mode.active
    assert (await client.get(PUBLIC)).status_code == 404
    metrics = (await client.get("/metrics")).text
    assert 'townsquare_shield_shed_total{class="anonymous"} 20' in metrics
    assert "townsquare_shield_attack_activations_total 1" in metrics
    for c in flood:
        await c.aclose()
