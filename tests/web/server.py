"""A real ``townsquare serve`` and a real headless Chromium for the browser tests."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from ..postgres_server import free_port

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
START_TIMEOUT = 60.0


@contextmanager
def running_server(data_dir: Path, **settings: str) -> Iterator[str]:
    """Start ``townsquare serve`` on a free loopback port; yields its base URL."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = data_dir / "server.log"
    env = {
        **os.environ,
        "TOWNSQUARE_DOMAIN": f"127.0.0.1:{port}",
        "TOWNSQUARE_RATE_LIMIT_REGISTRATION": "1000/minute",
        "TOWNSQUARE_RATE_LIMIT_LOGIN": "1000/minute",
        "TOWNSQUARE_RATE_LIMIT_LOGIN_PREFIX": "1000/minute",
        **{f"TOWNSQUARE_{key.upper()}": value for key, value in settings.items()},
    }
    command = [str(Path(sys.executable).parent / "townsquare"), "serve", "--port", str(port)]
    command += ["--workers", "1", "--data-dir", str(data_dir / "var")]
    with log.open("wb") as output:
        process = subprocess.Popen(
            command, env=env, stdout=output, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"townsquare serve exited:\n{log.read_text()[-3000:]}")
            try:
                if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"townsquare serve did not start:\n{log.read_text()[-3000:]}")
            time.sleep(0.2)
        yield url
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=10)
