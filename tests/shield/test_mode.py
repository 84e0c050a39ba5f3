"""Under-attack mode switches itself on under pressure and off after a quiet period."""

from __future__ import annotations

import os

import httpx
from fastapi import FastAPI

from tests.shield.conftest import shield_of, under_attack
from townsquare.config import Settings
from townsquare.shield.mode import AttackMode, set_forced_mode, shield_status


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def automatic(settings: Settings, clock: Clock) -> AttackMode:
    tuned = settings.model_copy(
        update={
            "shield_attack_window": 10.0,
            "shield_attack_min_requests": 20,
            "shield_attack_shed_ratio": 0.05,
            "shield_attack_quiet_period": 60.0,
        }
    )
    return AttackMode(tuned, clock=clock)


def window(mode: AttackMode, clock: Clock, served: int, refused: int, wait: float = 0.0) -> None:
    for _ in range(served):
        mode.served(wait)
    for _ in range(refused):
        mode.refused()
    clock.now += 10.0


def test_shedding_turns_the_mode_on_and_quiet_turns_it_off(settings: Settings) -> None:
    clock = Clock()
    mode = automatic(settings, clock)
    window(mode, clock, served=1000, refused=10)  # 1 %: a busy moment, not an attack
    assert not mode.active
    window(mode, clock, served=500, refused=500)
    assert mode.active
    assert mode.activations == 1
    # Half of everything shed: puzzles get as hard as they may.
    assert mode.intensity == settings.shield_pow_max_extra_difficulty == 2

    # Quiet, but not for long enough: stays on (no flapping).
    for _ in range(5):
        window(mode, clock, served=100, refused=0)
        assert mode.active
    window(mode, clock, served=100, refused=0)
    window(mode, clock, served=100, refused=0)
    assert not mode.active
    assert mode.intensity == 0

    # Its state is reported for `townsquare shield status`.
    status = shield_status(mode.settings)
    assert status["choice"] == "auto"
    assert [w["pid"] for w in status["workers"]] == [os.getpid()]
    assert status["active"] is False


def test_the_mode_turns_on_within_the_window_an_attack_starts_in(settings: Settings) -> None:
    clock = Clock()
    mode = automatic(settings, clock)  # windows of 10 s, 20 refusals and 5 % count
    for _ in range(100):
        mode.served(0.0)
    for _ in range(19):
        mode.refused()
    clock.now += 1.0
    assert not mode.active  # not enough refused yet
    mode.refused()
    clock.now += 1.0
    # 20 of 120 refused, 2 s into the window: on now, not when the window ends.
    assert mode.active
    assert mode.activations == 1
    # Judged again over the whole window when it ends (it stays on for the quiet period).
    clock.now += 8.0
    assert mode.active


def test_long_queues_turn_the_mode_on(settings: Settings) -> None:
    clock = Clock()
    mode = automatic(settings, clock)
    window(mode, clock, served=200, refused=0, wait=0.4)
    assert mode.active


def test_an_administrator_can_force_it_either_way(settings: Settings) -> None:
    clock = Clock()
    mode = automatic(settings, clock)
    set_forced_mode(settings, "on")
    clock.now += 1.5
    assert mode.active
    assert shield_status(settings)["choice"] == "on"

    window(mode, clock, served=500, refused=500)
    set_forced_mode(settings, "off")
    clock.now += 1.5
    assert not mode.active
    set_forced_mode(settings, "auto")
    clock.now += 1.5
    assert mode.active  # the attack it measured meanwhile


async def test_difficulty_rises_with_the_attack(app: FastAPI, client: httpx.AsyncClient) -> None:
    under_attack(app)
    shield = shield_of(app)
    calm = (await client.get("/api/v1/shield/challenge")).json()
    assert calm["difficulty"] == 8
    assert calm["under_attack"] is True
    shield.mode.intensity = 3
    harder = (await client.get("/api/v1/shield/challenge")).json()
    assert harder["difficulty"] == 11
    metrics = (await client.get("/metrics")).text
    assert "townsquare_shield_under_attack 1" in metrics
    assert "townsquare_shield_attack_intensity 3" in metrics
