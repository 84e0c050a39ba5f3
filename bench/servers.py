"""Starting and stopping the processes under test, and measuring their memory."""

from __future__ import annotations

import importlib.util
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import httpx
import psutil

READY_TIMEOUT = 90.0


@dataclass
class Server:
    name: str
    process: subprocess.Popen[bytes]
    url: str
    log: Path

    def workers(self) -> list[psutil.Process]:
        """The worker processes (the supervisor itself is left out)."""
        parent = psutil.Process(self.process.pid)
        return [
            child
            for child in parent.children(recursive=True)
            if "spawn_main" in " ".join(child.cmdline())
        ]

    def worker_rss_mb(self) -> list[float]:
        """Resident memory of each worker process."""
        return sorted(round(child.memory_info().rss / 2**20, 1) for child in self.workers())

    def worker_cpu_seconds(self) -> float:
        """CPU time (user + system) the workers have used so far, all together."""
        total = 0.0
        for child in self.workers():
            times = child.cpu_times()
            total += times.user + times.system
        return total

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)


def _wait_ready(server: Server) -> Server:
    deadline = time.monotonic() + READY_TIMEOUT
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"{server.name} exited:\n{server.log.read_text()[-3000:]}")
        try:
            if httpx.get(f"{server.url}/readyz", timeout=2).status_code == 200:
                return server
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    server.stop()
    raise RuntimeError(f"{server.name} was not ready:\n{server.log.read_text()[-3000:]}")


def _spawn(name: str, command: list[str], env: dict[str, str], port: int, log: Path) -> Server:
    with log.open("wb") as output:
        process = subprocess.Popen(
            command,
            env={**os.environ, **env},
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            # At the ordinary priority, whatever the harness runs at (bench/attack raises its
            # legitimate clients' priority).
            preexec_fn=partial(os.setpriority, os.PRIO_PROCESS, 0, 0),
        )
    return _wait_ready(Server(name, process, f"http://127.0.0.1:{port}", log))


def start_townsquare(
    data_dir: Path, database_url: str, port: int, workers: int, log: Path
) -> Server:
    env = {
        "TOWNSQUARE_DOMAIN": f"127.0.0.1:{port}",
        "TOWNSQUARE_DATABASE_URL": database_url,
        # Measured here is the cost of serving, not of refusing: limits are off.
        "TOWNSQUARE_RATE_LIMITS_ENABLED": "false",
        # A saturating load run is what an attack looks like; keep challenges out of the
        # figures (admission control still sheds what cannot be served in time).
        "TOWNSQUARE_SHIELD_ATTACK_MODE": "off",
        "TOWNSQUARE_LOG_LEVEL": "warning",
    }
    command = [str(Path(sys.executable).parent / "townsquare"), "serve", "--port", str(port)]
    command += ["--workers", str(workers), "--data-dir", str(data_dir)]
    return _spawn("townsquare", command, env, port, log)


def start_baseline(body: Path, port: int, workers: int, log: Path) -> Server:
    """The baseline on the same uvicorn options as ``townsquare serve``."""
    loop = "uvloop" if importlib.util.find_spec("uvloop") else "asyncio"
    command = [sys.executable, "-m", "uvicorn", "--factory", "bench.baseline:app"]
    command += ["--port", str(port), "--workers", str(workers), "--loop", loop]
    command += ["--http", "httptools", "--no-proxy-headers", "--no-server-header"]
    command += ["--no-access-log", "--log-level", "warning", "--timeout-graceful-shutdown", "5"]
    return _spawn("baseline", command, {"BENCH_BASELINE_BODY": str(body)}, port, log)
