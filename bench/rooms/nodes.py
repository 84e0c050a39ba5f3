"""The servers under test, as subprocesses: Townsquare nodes, the baseline, Redis."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import orjson
import psutil

from tests.postgres_server import free_port

HOST = "127.0.0.1"
WS_IMPLEMENTATION = ["auto"]


@dataclass
class Node:
    name: str
    process: subprocess.Popen[bytes]
    port: int
    stats_path: Path
    log: Path

    def stats(self) -> dict[str, Any]:
        deadline = time.monotonic() + 5
        while True:
            try:
                value: dict[str, Any] = orjson.loads(self.stats_path.read_bytes())
                return value
            except (OSError, orjson.JSONDecodeError):
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)

    def rss(self) -> float:
        return float(psutil.Process(self.process.pid).memory_info().rss)

    def cpu(self) -> float:
        times = psutil.Process(self.process.pid).cpu_times()
        return float(times.user + times.system)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)


def start_node(name: str, command: list[str], port: int, tmp: Path, env: dict[str, str]) -> Node:
    stats = tmp / f"{name}-stats.json"
    log = tmp / f"{name}.log"
    with log.open("wb") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", *command, "--port", str(port), "--stats", str(stats)],
            env={**os.environ, **env},
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    node = Node(name, process, port, stats, log)
    deadline = time.monotonic() + 90
    while not stats.exists():
        if process.poll() is not None or time.monotonic() > deadline:
            node.stop()
            raise RuntimeError(f"{name} did not start:\n{log.read_text()[-3000:]}")
        time.sleep(0.2)
    return node


def townsquare_env(port: int, data_dir: Path, **extra: str) -> dict[str, str]:
    return {
        "TOWNSQUARE_DOMAIN": f"{HOST}:{port}",
        "TOWNSQUARE_RATE_LIMITS_ENABLED": "false",
        "TOWNSQUARE_SHIELD_ATTACK_MODE": "off",
        "TOWNSQUARE_LOG_LEVEL": "warning",
        "TOWNSQUARE_DATA_DIR": str(data_dir),
        "TOWNSQUARE_ROOMS_JOIN_RATE": "0",
        **extra,
    }


def townsquare_node(name: str, tmp: Path, data_dir: Path, prepare: bool, **extra: str) -> Node:
    port = free_port()
    command = ["bench.rooms.server", "--data-dir", str(data_dir), "--ws", WS_IMPLEMENTATION[0]]
    if prepare:
        command.append("--prepare")
    return start_node(name, command, port, tmp, townsquare_env(port, data_dir, **extra))


def sign_up_and_open_room(port: int) -> tuple[str, str]:
    """(the host's token, a live public room's id)."""
    url = f"http://{HOST}:{port}"
    app = httpx.post(
        f"{url}/api/v1/apps",
        json={
            "client_name": "bench",
            "redirect_uris": "urn:ietf:wg:oauth:2.0:oob",
            "scopes": "read write",
        },
        timeout=30,
    ).json()
    app_token = httpx.post(
        f"{url}/oauth/token",
        data={
            "grant_type": "client_credentials",
            "client_id": app["client_id"],
            "client_secret": app["client_secret"],
            "scope": "read write",
        },
        timeout=30,
    ).json()["access_token"]
    name = f"host{os.getpid()}x{int(time.time()) % 100000}"
    created = httpx.post(
        f"{url}/api/v1/accounts",
        headers={"Authorization": f"Bearer {app_token}"},
        json={
            "username": name,
            "email": f"{name}@example.test",
            "password": "bench password 1",
            "agreement": True,
        },
        timeout=60,
    )
    created.raise_for_status()
    token = created.json()["access_token"]
    room = httpx.post(
        f"{url}/api/v1/rooms",
        json={"title": "Benchmark room"},
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
    )
    room.raise_for_status()
    return token, room.json()["id"]


@contextmanager
def redis_server(tmp: Path) -> Iterator[str]:
    binary = shutil.which("redis-server")
    if binary is None:
        raise RuntimeError("redis-server is not installed")
    port = free_port()
    process = subprocess.Popen(
        [binary, "--port", str(port), "--bind", HOST, "--save", "", "--dir", str(tmp)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        time.sleep(0.5)
        yield f"redis://{HOST}:{port}/0"
    finally:
        process.terminate()
        process.wait(10)
