"""A real ``townsquare serve`` (two worker processes) per backend, driven over loopback HTTP.

These tests use Mastodon.py exactly as a third-party client would. Work that happens after a
request (fan-out, notifications) is waited for with :func:`eventually`, bounded in time.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import httpx
import pytest
from mastodon import Mastodon

from ..postgres_server import PostgresServer, free_port

T = TypeVar("T")
SCOPES = ["read", "write", "follow", "push"]
PASSWORD = "acceptance password 1"
CALLBACK = "http://127.0.0.1:9/callback"
OOB = "urn:ietf:wg:oauth:2.0:oob"
START_TIMEOUT = 60.0
_names = itertools.count(1)


@dataclass
class Instance:
    url: str
    data_dir: Path
    database_url: str
    log: Path
    client_id: str
    client_secret: str

    def anonymous(self) -> Mastodon:
        return Mastodon(api_base_url=self.url, request_timeout=30)

    def command(self, *args: str) -> subprocess.CompletedProcess[str]:
        """Run ``townsquare ARGS`` against this instance's database, as its operator would."""
        storage = ["--data-dir", str(self.data_dir), "--database-url", self.database_url]
        return subprocess.run(
            [str(Path(sys.executable).parent / "townsquare"), *args, *storage],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )


def _log_tail(log: Path) -> str:
    return log.read_text(errors="replace")[-4000:] if log.exists() else ""


def _start(tmp: Path, database_url: str) -> tuple[subprocess.Popen[bytes], str, Path]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = tmp / "server.log"
    env = {
        **os.environ,
        "TOWNSQUARE_DOMAIN": f"127.0.0.1:{port}",
        "TOWNSQUARE_DATABASE_URL": database_url,
        # Every test signs up and logs in from the same address.
        "TOWNSQUARE_RATE_LIMIT_REGISTRATION": "1000/minute",
        "TOWNSQUARE_RATE_LIMIT_LOGIN": "1000/minute",
        "TOWNSQUARE_RATE_LIMIT_LOGIN_PREFIX": "1000/minute",
    }
    command = [str(Path(sys.executable).parent / "townsquare"), "serve", "--port", str(port)]
    command += ["--workers", "2", "--data-dir", str(tmp / "var")]
    with log.open("wb") as output:
        process = subprocess.Popen(
            command, env=env, stdout=output, stderr=subprocess.STDOUT, start_new_session=True
        )
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"townsquare serve exited ({process.returncode}):\n{_log_tail(log)}")
        try:
            if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                return process, url, log
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    _stop(process)
    raise RuntimeError(f"townsquare serve was not ready in {START_TIMEOUT} s:\n{_log_tail(log)}")


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)


@pytest.fixture(scope="session", params=["sqlite", "postgres"])
def instance(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Instance]:
    tmp = tmp_path_factory.mktemp(f"serve-{request.param}")
    database_url = ""
    if request.param == "postgres":
        server: PostgresServer = request.getfixturevalue("postgres_server")
        database_url = asyncio.run(server.create_database("townsquare_acceptance"))
    process, url, log = _start(tmp, database_url)
    try:
        client_id, client_secret = Mastodon.create_app(
            "acceptance", scopes=SCOPES, redirect_uris=[OOB, CALLBACK], api_base_url=url
        )
        yield Instance(url, tmp / "var", database_url, log, client_id, client_secret)
    finally:
        _stop(process)
        if request.node.session.testsfailed:
            print(f"--- townsquare serve ({request.param}) log ---\n{_log_tail(log)}")


def unique_username(prefix: str) -> str:
    return f"{prefix}{next(_names)}x{os.getpid() % 10000}"[:30]


Register = Callable[[str], Mastodon]


@pytest.fixture
def register(instance: Instance) -> Register:
    """Sign up a new account through the API; returns a Mastodon.py client logged in as it."""

    def sign_up(prefix: str) -> Mastodon:
        api = Mastodon(
            client_id=instance.client_id,
            client_secret=instance.client_secret,
            api_base_url=instance.url,
            request_timeout=30,
        )
        username = unique_username(prefix)
        api.create_account(username, PASSWORD, f"{username}@example.org", agreement=True)
        return api

    return sign_up


def eventually(check: Callable[[], T], *, timeout: float = 15.0, interval: float = 0.2) -> T:
    """``check()``'s first truthy result; fails when none comes within ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s (last: {result!r})")
        time.sleep(interval)
