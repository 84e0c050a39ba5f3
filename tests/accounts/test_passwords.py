"""Password hashes run on threads of their own, behind everything else for the CPU."""

from __future__ import annotations

import os
import threading

import pytest

from townsquare.accounts.passwords import (
    HASHING_NICENESS,
    hash_password_off_loop,
    hashing_threads,
    verify_password_off_loop,
)


def _own_niceness() -> int:
    return os.getpriority(os.PRIO_PROCESS, threading.get_native_id())


async def test_a_hash_made_off_the_loop_verifies_and_a_wrong_password_does_not() -> None:
    stored = await hash_password_off_loop("correct horse battery")
    assert await verify_password_off_loop(stored, "correct horse battery")
    assert not await verify_password_off_loop(stored, "wrong horse battery")
    assert not await verify_password_off_loop(None, "correct horse battery")


@pytest.mark.skipif(not hasattr(os, "getpriority"), reason="thread niceness is Linux's")
def test_hashing_threads_run_at_a_lower_priority_than_the_worker() -> None:
    worker = _own_niceness()
    hashing = hashing_threads().submit(_own_niceness).result(timeout=10)
    assert hashing == min(worker + HASHING_NICENESS, 19)
    assert _own_niceness() == worker  # the worker's own thread is left as it was
