"""Listeners spread over several client processes, so that the client is not what is measured.

One event loop reading 10,000 sockets on a shared machine falls seconds behind the servers it
measures. Each client process here runs its own loop, opens its share of the listeners from a
loopback source address of its own (127.0.1.n, so each has its own range of ephemeral ports) and
answers the benchmark's commands, one JSON line each way on its stdin and stdout:

- ``open``: open listeners (some of them probes) and wait for their handshakes;
- ``clear``: forget the probes' arrivals; ``snapshot``: Clusters received so far and the probes'
  arrivals;
- ``close``: close every listener and exit.

Arrival times are ``time.monotonic()``, which on Linux is CLOCK_MONOTONIC, one clock for the
whole machine: they compare directly with the speaker's send times in the benchmark's process.
``python -m bench.rooms.crowd --source 127.0.1.1`` (started by the benchmark, not by hand).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import math
import os
import resource
import subprocess
import sys
from dataclasses import dataclass
from typing import Any

import orjson
import psutil

from bench.rooms.clients import Listener, Tally, open_listener
from bench.rooms.nodes import HOST

HANDSHAKES_AT_ONCE = 200


def default_processes(listeners: int) -> int:
    """One client process per 2,500 listeners, at least one, at most four."""
    return max(1, min(4, math.ceil(listeners / 2_500)))


def shares(total: int, parts: int) -> list[int]:
    """``total`` split into ``parts`` near-equal whole shares."""
    return [total // parts + (1 if n < total % parts else 0) for n in range(parts)]


# ---- inside a client process ---------------------------------------------------------------------


class Crowd:
    """Listeners held in one process; ``source`` is the loopback address they connect from."""

    def __init__(self, source: str | None = None) -> None:
        self.source = source
        self.tally = Tally()
        self.listeners: list[Listener] = []
        self.probes: list[Listener] = []

    async def open(
        self,
        ports: list[int],
        path: str,
        count: int,
        probes: int = 0,
        index: dict[bytes, int] | None = None,
        *,
        frozen: bool = False,
    ) -> None:
        gate = asyncio.Semaphore(HANDSHAKES_AT_ONCE)

        async def one(number: int) -> None:
            async with gate:
                is_probe = number < probes
                listener = await open_listener(
                    HOST,
                    ports[number % len(ports)],
                    path,
                    self.tally,
                    probe=index if is_probe else None,
                    frozen=frozen,
                    source=self.source,
                )
                status = await asyncio.wait_for(listener.upgraded, 60)
                if status != 101:
                    raise RuntimeError(f"a listener was refused ({status})")
                (self.probes if is_probe else self.listeners).append(listener)

        await asyncio.gather(*(one(n) for n in range(count)))

    def snapshot(self) -> dict[str, Any]:
        return {
            "clusters": self.tally.clusters,
            "closed": self.tally.closed,
            "arrivals": [
                [index, moment] for probe in self.probes for index, moment in probe.arrivals.items()
            ],
        }

    def close(self) -> None:
        for listener in [*self.listeners, *self.probes]:
            if listener.transport is not None:
                listener.transport.close()


async def serve_commands(source: str) -> None:
    crowd = Crowd(source)
    loop = asyncio.get_running_loop()
    while True:
        line = await loop.run_in_executor(None, sys.stdin.buffer.readline)
        if not line:
            crowd.close()
            return
        command = orjson.loads(line)
        answer: dict[str, Any] = {"ok": True}
        try:
            if command["do"] == "open":
                index = {bytes.fromhex(data): n for data, n in command["index"]}
                await crowd.open(
                    command["ports"], command["path"], command["count"], command["probes"], index
                )
            elif command["do"] == "clear":
                for probe in crowd.probes:
                    probe.arrivals.clear()
            elif command["do"] == "snapshot":
                answer.update(crowd.snapshot())
            elif command["do"] == "close":
                crowd.close()
                await asyncio.sleep(0.5)
        except Exception as error:  # reported to the benchmark, which stops
            answer = {"ok": False, "error": f"{type(error).__name__}: {error}"}
        sys.stdout.buffer.write(orjson.dumps(answer) + b"\n")
        sys.stdout.buffer.flush()
        if command["do"] == "close":
            return


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.rooms.crowd")
    parser.add_argument("--source", required=True, help="Loopback address to connect from.")
    args = parser.parse_args()
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    try:
        import uvloop

        uvloop.run(serve_commands(args.source))
    except ImportError:
        asyncio.run(serve_commands(args.source))


# ---- in the benchmark's process ------------------------------------------------------------------


@dataclass
class ClientProcess:
    process: subprocess.Popen[bytes]
    source: str

    @classmethod
    def start(cls, number: int) -> ClientProcess:
        source = f"127.0.1.{number + 1}"
        process = subprocess.Popen(
            [sys.executable, "-m", "bench.rooms.crowd", "--source", source],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=os.environ.copy(),
        )
        return cls(process, source)

    def ask(self, command: dict[str, Any]) -> dict[str, Any]:
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write(orjson.dumps(command) + b"\n")
        self.process.stdin.flush()
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError(f"client process {self.source} stopped")
        answer: dict[str, Any] = orjson.loads(line)
        if not answer["ok"]:
            raise RuntimeError(f"client process {self.source}: {answer['error']}")
        return answer

    def cpu(self) -> float:
        times = psutil.Process(self.process.pid).cpu_times()
        return float(times.user + times.system)

    def stop(self) -> None:
        if self.process.poll() is None:
            with contextlib.suppress(OSError, RuntimeError):
                self.ask({"do": "close"})
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)


class Clients:
    """The benchmark's listeners, in ``count`` client processes; figures merged across them."""

    def __init__(self, count: int) -> None:
        self.processes = [ClientProcess.start(n) for n in range(count)]

    async def ask_all(self, command: dict[str, Any]) -> list[dict[str, Any]]:
        return list(
            await asyncio.gather(
                *(asyncio.to_thread(process.ask, command) for process in self.processes)
            )
        )

    async def open(
        self, ports: list[int], path: str, count: int, probes: int, index: dict[bytes, int]
    ) -> None:
        wire_index = [[data.hex(), n] for data, n in index.items()]
        parts = len(self.processes)
        await asyncio.gather(
            *(
                asyncio.to_thread(
                    process.ask,
                    {
                        "do": "open",
                        "ports": ports,
                        "path": path,
                        "count": listeners,
                        "probes": probe_count,
                        "index": wire_index,
                    },
                )
                for process, listeners, probe_count in zip(
                    self.processes, shares(count, parts), shares(probes, parts), strict=True
                )
            )
        )

    async def clear(self) -> None:
        await self.ask_all({"do": "clear"})

    async def snapshot(self) -> tuple[int, list[tuple[int, float]]]:
        """(Clusters received by all listeners, every probe's (Cluster index, arrival))."""
        answers = await self.ask_all({"do": "snapshot"})
        clusters = sum(answer["clusters"] for answer in answers)
        arrivals = [(index, moment) for answer in answers for index, moment in answer["arrivals"]]
        return clusters, arrivals

    def cpu(self) -> list[float]:
        """CPU-seconds used so far by each client process."""
        return [process.cpu() for process in self.processes]

    def stop(self) -> None:
        for process in self.processes:
            process.stop()


if __name__ == "__main__":
    main()
