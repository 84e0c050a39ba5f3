"""A worker with the shield collects garbage at a flood's pace."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from townsquare.config import Settings
from townsquare.shield import collector
from townsquare.shield.state import ShieldState


@pytest.fixture
def thresholds() -> Iterator[None]:
    kept = gc.get_threshold()
    gc.set_threshold(700, 10, 10)
    yield
    gc.set_threshold(*kept)


@pytest.mark.usefixtures("thresholds")
def test_young_collections_are_ten_times_rarer_with_the_shield() -> None:
    ShieldState.from_settings(Settings(secret_key="test-secret"))
    assert gc.get_threshold() == (collector.YOUNG_THRESHOLD, 10, 10)


@pytest.mark.usefixtures("thresholds")
def test_without_the_shield_the_collector_keeps_its_pace() -> None:
    ShieldState.from_settings(Settings(secret_key="test-secret", shield_enabled=False))
    assert gc.get_threshold() == (700, 10, 10)


@pytest.mark.usefixtures("thresholds")
def test_a_slower_pace_already_chosen_is_kept() -> None:
    gc.set_threshold(50_000, 10, 10)
    collector.pace_collector()
    assert gc.get_threshold() == (50_000, 10, 10)
