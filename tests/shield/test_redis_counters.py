"""Shared counters in a real Redis server: one budget for every worker, and no outage errors."""

from __future__ import annotations

import itertools
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.shield.conftest import AppFactory, client_from
from townsquare.shield.redis_counters import RedisCounterStore

REDIS_SERVER = shutil.which("redis-server")
FRESH_ADDRESSES = itertools.count(1)
pytestmark = pytest.mark.skipif(REDIS_SERVER is None, reason="redis-server is not installed")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@pytest.fixture(scope="module")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    assert REDIS_SERVER is not None
    port = free_port()
    workdir: Path = tmp_path_factory.mktemp("redis")
    process = subprocess.Popen(
        [
            REDIS_SERVER,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--dir",
            str(workdir),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            time.sleep(0.05)
    yield f"redis://127.0.0.1:{port}/0"
    process.terminate()
    process.wait(10)


async def test_workers_share_one_budget(redis_url: str) -> None:
    one, other = RedisCounterStore.from_url(redis_url), RedisCounterStore.from_url(redis_url)
    key = f"shared-{time.time_ns()}"
    try:
        verdicts = [await store.acquire(key, 3, 60) for store in (one, other, one, other)]
        assert [v.allowed for v in verdicts] == [True, True, True, False]
        assert [v.remaining for v in verdicts[:3]] == [2, 1, 0]
        assert verdicts[0].reset_at > time.time()
        assert (await other.peek(key, 3, 60)).remaining == 0
        assert (await one.acquire(f"{key}-elsewhere", 3, 60)).allowed
    finally:
        await one.aclose()
        await other.aclose()


async def test_an_unreachable_redis_falls_back_to_counting_per_worker() -> None:
    store = RedisCounterStore.from_url(f"redis://127.0.0.1:{free_port()}/0")
    try:
        verdicts = [await store.acquire("k", 2, 60) for _ in range(3)]
        assert [v.allowed for v in verdicts] == [True, True, False]
    finally:
        await store.aclose()


async def test_two_workers_of_one_instance_count_together(
    shielded: AppFactory, redis_url: str
) -> None:
    one = await shielded(redis_url=redis_url, rate_limit_anonymous="3/minute")
    other = await shielded(redis_url=redis_url, rate_limit_anonymous="3/minute")
    address = f"192.0.2.{next(FRESH_ADDRESSES)}"  # the Redis server lives for the whole module
    codes = []
    for app in (one, other, one, other):
        async with client_from(app, address) as http:
            codes.append((await http.get("/api/v1/no-such-endpoint")).status_code)
    assert codes == [404, 404, 404, 429]
