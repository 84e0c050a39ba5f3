"""A join storm: many listeners joining a live room at once, against the admission rate.

A speaker is streaming into the room throughout, so a join is done when the listener has the
live track's init segment (its INIT frame) after the 101 of its handshake; the storm's rate is
the joins done over the whole storm, from the moment every client starts to the last init
segment received. The joins come from several client processes (one per 750, up to four), so
that what is measured is the server and not how fast one Python process opens connections.
Refused handshakes (503) are retried after ``0.5 s * 2^attempt`` times a random factor between
0.5 and 1.5, as the room page does.

``python -m bench.rooms.storm [--joins 3000] [--join-rate 1000] [--workers 1] [--repeat 1]``
runs storms alone (``python -m bench.rooms`` runs one as part of the whole benchmark). With
``--workers 1`` the node is the benchmark's one-process server; with more, it is
``townsquare serve --workers N``, its workers sharing the room through Redis as a multi-worker
node does, with the connection layer's per-address caps lifted (every client connects from
127.0.0.1).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import multiprocessing
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import psutil

from bench.rooms.clients import storm_part
from bench.rooms.crowd import shares
from bench.rooms.nodes import HOST, redis_server, sign_up_and_open_room, townsquare_env
from bench.rooms.stream import Stream, speak
from tests.postgres_server import free_port

# The storm's clients give up on a join after this long (time.monotonic() seconds).
STORM_DEADLINE = 60.0


def listen_overflows() -> int:
    """The machine's count of connections dropped because a listening socket's accept queue
    was full (every process's, so other work on the machine counts too); their clients try
    again after a second, then two more, and so on."""
    with open("/proc/net/netstat") as netstat:
        lines = netstat.read().splitlines()
    for names, values in zip(lines[::2], lines[1::2], strict=False):
        if names.startswith("TcpExt:"):
            figures = dict(zip(names.split()[1:], values.split()[1:], strict=False))
            return int(figures.get("ListenOverflows", 0))
    return 0


def load() -> str:
    one, five, _fifteen = os.getloadavg()
    return f"{one:.1f}/{five:.1f}"


async def storm(port: int, path: str, count: int, cpu: Any = None) -> dict[str, Any]:
    """``count`` joins at once against the admission rate, retried with jitter like the player.

    ``cpu``: a callable giving the server's CPU-seconds so far, for its CPU per join."""
    processes = max(1, min(4, count // 750))
    context = multiprocessing.get_context("spawn")
    loop = asyncio.get_running_loop()
    with ProcessPoolExecutor(processes, mp_context=context) as pool:
        # The pool's processes are started and have imported the clients (an empty share)
        # before the storm's clock starts.
        await asyncio.gather(
            *(
                loop.run_in_executor(pool, storm_part, HOST, port, path, 0, 0.0, 0.0)
                for _ in range(processes)
            )
        )
        # Every share begins at the same moment.
        started = time.monotonic() + 0.5
        deadline = started + STORM_DEADLINE
        cpu_before = cpu() if cpu else 0.0
        overflows_before = listen_overflows()
        parts = await asyncio.gather(
            *(
                loop.run_in_executor(pool, storm_part, HOST, port, path, share, started, deadline)
                for share in shares(count, processes)
            )
        )
        cpu_used = (cpu() - cpu_before) if cpu else float("nan")
        overflows = listen_overflows() - overflows_before
    joined_at = sorted(moment for part in parts for moment in part["joined_at"])
    admitted_at = sorted(moment for part in parts for moment in part["admitted_at"])
    joined = len(joined_at)
    elapsed = (joined_at[-1] if joined_at else time.monotonic()) - started
    per_second: dict[int, int] = {}
    for moment in joined_at:
        per_second[int(moment - started)] = per_second.get(int(moment - started), 0) + 1
    # The time by which half and 99% of the joins were done.
    half = joined_at[len(joined_at) // 2] - started if joined_at else float("nan")
    most = joined_at[int(len(joined_at) * 0.99) - 1] - started if joined_at else float("nan")
    return {
        "joins": count,
        "joined": joined,
        "admitted": len(admitted_at),
        "refused_503": sum(part["refused"] for part in parts),
        "failed": sum(part["failed"] for part in parts),
        "no_init": sum(part["no_init"] for part in parts),
        "seconds": elapsed,
        "joins_per_s": joined / elapsed if elapsed > 0 else float("nan"),
        "peak_per_s": max(per_second.values()) if per_second else 0,
        "half_s": half,
        "p99_s": most,
        "server_cpu_s": cpu_used,
        "cpu_ms_per_join": cpu_used / joined * 1000 if joined else float("nan"),
        "processes": processes,
        "listen_overflows": overflows,
        # Each client process's CPU over its share of the storm (until its last join was done).
        "client_cpu_s": [part["cpu_s"] for part in parts],
        "load": load(),
    }


async def storm_live(
    port: int, room: str, token: str, count: int, cpu: Any = None
) -> dict[str, Any]:
    """A storm into a room where a speaker is streaming (so that there is an init segment)."""
    stream = Stream.make(STORM_DEADLINE + 10)
    speaker = f"ws://{HOST}:{port}/api/v1/rooms/{room}/speak?access_token={token}"
    speaking = asyncio.create_task(speak(speaker, stream, framed=False))
    try:
        await asyncio.sleep(1.5)
        if speaking.done():
            speaking.result()  # the speaker failed: say why
        return await storm(port, f"/api/v1/rooms/{room}/listen", count, cpu)
    finally:
        speaking.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await speaking


def describe(s: dict[str, Any], rate: float, workers: int) -> str:
    node = "one server process" if workers == 1 else f"a node of {workers} workers"
    admitting = f"admitting {rate:g}/s per process" if rate > 0 else "admitting every join at once"
    return (
        f"{s['joins']} listeners joining a live room at once from {s['processes']} client "
        f"processes, against {node} {admitting}, retrying after 503 with "
        f"jitter: {s['joined']} had the init segment {s['seconds']:.2f} s after the start "
        f"({s['joins_per_s']:.0f} joins/s over the storm; half by {s['half_s']:.2f} s, peak "
        f"second {s['peak_per_s']}/s), {s['refused_503']} answers 503, {s['failed']} failures, "
        f"{s['no_init']} admitted without an init segment; server CPU "
        f"{s['cpu_ms_per_join']:.2f} ms per join (503s included; "
        f"{1000 / s['cpu_ms_per_join']:.0f} joins per CPU-second), the client processes "
        f"{sum(s['client_cpu_s']):.1f} CPU-s in all; {s.get('listen_overflows', 0)} "
        f"connections dropped from full accept queues on the machine; load {s['load']}."
    )


# ---- a storm on its own --------------------------------------------------------------------------


@contextlib.contextmanager
def served(
    tmp: Path, workers: int, rate: float, redis_url: str | None
) -> Iterator[tuple[int, Any]]:
    """A Townsquare node: (its port, a callable giving its processes' CPU-seconds)."""
    port = free_port()
    data_dir = tmp / "townsquare"
    env = {**os.environ, **townsquare_env(port, data_dir)}
    env["TOWNSQUARE_ROOMS_JOIN_RATE"] = f"{rate:g}"
    if workers == 1:
        stats = tmp / f"storm-{port}.json"
        command = [
            sys.executable, "-m", "bench.rooms.server", "--port", str(port),
            "--data-dir", str(data_dir), "--stats", str(stats), "--prepare",
        ]  # fmt: skip
    else:
        assert redis_url is not None
        env["TOWNSQUARE_REDIS_URL"] = redis_url
        # Every client connects from 127.0.0.1: lift the connection layer's per-address caps.
        env["TOWNSQUARE_SERVER_MAX_CONNECTIONS_PER_ADDRESS"] = "100000"
        env["TOWNSQUARE_SERVER_CONNECTION_RATE_PER_ADDRESS"] = "1000000/1 second"
        env["TOWNSQUARE_SERVER_CONNECTION_RATE_PER_PREFIX"] = "1000000/1 second"
        env["TOWNSQUARE_SERVER_MAX_CONNECTIONS"] = "100000"
        env["TOWNSQUARE_SERVER_LAG_THRESHOLD"] = "0"
        command = [
            str(Path(sys.executable).parent / "townsquare"), "serve", "--workers", str(workers),
            "--port", str(port), "--data-dir", str(data_dir),
        ]  # fmt: skip
    log = (tmp / f"storm-{port}.log").open("wb")
    process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 120
        while True:
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the node did not start (see {log.name})")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"http://{HOST}:{port}/api/v1/instance", timeout=2).is_success:
                    break
            time.sleep(0.3)

        def cpu() -> float:
            total = 0.0
            root = psutil.Process(process.pid)
            for one in [root, *root.children(recursive=True)]:
                with contextlib.suppress(psutil.Error):
                    times = one.cpu_times()
                    total += times.user + times.system
            return total

        yield port, cpu
    finally:
        process.terminate()
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)
        log.close()


async def run(args: argparse.Namespace) -> list[str]:
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    lines = []
    with tempfile.TemporaryDirectory(prefix="bench-storm-") as raw, contextlib.ExitStack() as stack:
        tmp = Path(raw)
        redis_url = stack.enter_context(redis_server(tmp)) if args.workers > 1 else None
        port, cpu = stack.enter_context(served(tmp, args.workers, args.join_rate, redis_url))
        token, room = await asyncio.to_thread(sign_up_and_open_room, port)
        for number in range(args.repeat):
            if number:
                await asyncio.sleep(3.0)  # the previous storm's listeners leave
            started = time.strftime("%H:%M:%S UTC", time.gmtime())
            figures = await storm_live(port, room, token, args.joins, cpu)
            line = f"{started}: {describe(figures, args.join_rate, args.workers)}"
            print(line, flush=True)
            lines.append(line)
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.rooms.storm", description=__doc__)
    parser.add_argument("--joins", type=int, default=3_000)
    parser.add_argument("--join-rate", type=float, default=1_000, help="0: admit all at once.")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args()
    print(f"load average at the start: {load()}", flush=True)
    try:
        import uvloop

        uvloop.run(run(args))
    except ImportError:
        asyncio.run(run(args))
    print(f"load average at the end: {load()}", flush=True)


if __name__ == "__main__":
    main()
