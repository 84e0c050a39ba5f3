"""``python -m bench.rooms``: live audio rooms on this machine, next to a bare broadcast baseline.

One speaker sends a 32 kbit/s WebM/Opus stream in 250 ms chunks (made with PyAV). Against one
Townsquare node (``create_app`` under uvicorn, as ``townsquare serve`` runs it) and against a
bare ``websockets`` broadcast server, in the same run: memory per idle listener, deliveries a
second and per CPU-second, relay latency (chunk in → last write) p50/p99, end-to-end latency
at probe listeners, then the same with 1% frozen listeners; for Townsquare also the time a late
joiner waits for audio, a join storm against the admission rate, and two nodes joined by Redis.
Every phase is bounded in time; the load average is recorded next to the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from bench.rooms.clients import JoinResult, Listener, Tally, join_with_retries, open_listener
from bench.rooms.nodes import (
    HOST,
    WS_IMPLEMENTATION,
    Node,
    redis_server,
    sign_up_and_open_room,
    start_node,
    townsquare_node,
)
from bench.rooms.report import report
from bench.rooms.stream import Stream, speak
from tests.postgres_server import free_port


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.rooms", description=__doc__)
    parser.add_argument("--listeners", type=int, default=5_000)
    parser.add_argument("--machine-listeners", type=int, default=10_000)
    parser.add_argument("--seconds", type=float, default=12.0, help="Length of each stream.")
    parser.add_argument("--probes", type=int, default=20)
    parser.add_argument("--late", type=int, default=10)
    parser.add_argument("--storm", type=int, default=3_000)
    parser.add_argument("--skip-machine", action="store_true")
    parser.add_argument("--ws", default="auto", help="uvicorn's WebSocket implementation.")
    parser.add_argument("--output", type=Path, default=Path("bench-rooms.md"))
    return parser.parse_args()


# ---- measuring -----------------------------------------------------------------------------------


def percentile(values: list[float], share: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def load() -> str:
    one, five, _fifteen = os.getloadavg()
    return f"{one:.1f}/{five:.1f}"


@dataclass
class Crowd:
    listeners: list[Listener] = field(default_factory=list)
    probes: list[Listener] = field(default_factory=list)
    tally: Tally = field(default_factory=Tally)

    def close(self) -> None:
        for listener in [*self.listeners, *self.probes]:
            if listener.transport is not None:
                listener.transport.close()


async def gather_listeners(
    ports: list[int],
    path: str,
    count: int,
    crowd: Crowd,
    *,
    frozen: bool = False,
    probe_index: dict[bytes, int] | None = None,
    probes: int = 0,
) -> None:
    """Open ``count`` listeners spread over ``ports``, 200 handshakes at a time."""
    gate = asyncio.Semaphore(200)

    async def one(number: int) -> None:
        async with gate:
            is_probe = number < probes
            listener = await open_listener(
                HOST,
                ports[number % len(ports)],
                path,
                crowd.tally,
                probe=probe_index if is_probe else None,
                frozen=frozen,
            )
            status = await asyncio.wait_for(listener.upgraded, 60)
            if status != 101:
                raise RuntimeError(f"a listener was refused ({status})")
            (crowd.probes if is_probe else crowd.listeners).append(listener)

    await asyncio.gather(*(one(n) for n in range(count)))


async def wait_listeners(nodes: list[Node], count: int, within: float = 60) -> None:
    deadline = time.monotonic() + within
    while sum(node.stats()["listeners"] for node in nodes) < count:
        if time.monotonic() > deadline:
            raise RuntimeError(f"only {[n.stats()['listeners'] for n in nodes]} of {count} joined")
        await asyncio.sleep(0.5)


async def steady(
    nodes: list[Node],
    speaker_url: str,
    stream: Stream,
    crowd: Crowd,
    *,
    framed: bool,
    listeners: int,
) -> dict[str, Any]:
    """Stream once to the crowd; the figures of that stream."""
    before = [node.stats() for node in nodes]
    cpu_before = [node.cpu() for node in nodes]
    received_before = crowd.tally.clusters
    for probe in crowd.probes:
        probe.arrivals.clear()
    started = time.monotonic()
    sent_at = await speak(speaker_url, stream, framed=framed)
    elapsed = time.monotonic() - started
    after = [node.stats() for node in nodes]
    cpu = sum(node.cpu() for node in nodes) - sum(cpu_before)
    deliveries = sum(a["deliveries"] - b["deliveries"] for a, b in zip(after, before, strict=True))
    relay = []
    for a, b in zip(after, before, strict=True):
        relay += a["latencies"][len(b["latencies"]) :]
    end_to_end = [
        arrival - sent_at[index]
        for probe in crowd.probes
        for index, arrival in probe.arrivals.items()
        if index in sent_at
    ]
    expected = len(stream.clusters) * listeners
    return {
        "deliveries_per_s": deliveries / elapsed,
        "deliveries_per_cpu_s": deliveries / cpu if cpu else float("nan"),
        "cpu_share": cpu / elapsed,
        "relay_p50_ms": percentile(relay, 0.5) * 1000,
        "relay_p99_ms": percentile(relay, 0.99) * 1000,
        "e2e_p50_ms": percentile(end_to_end, 0.5) * 1000,
        "e2e_p99_ms": percentile(end_to_end, 0.99) * 1000,
        "received": (crowd.tally.clusters - received_before) / expected if expected else 0.0,
        "skipped": sum(a["skipped"] - b["skipped"] for a, b in zip(after, before, strict=True)),
        "load": load(),
    }


async def late_joiners(
    port: int, path: str, speaker_url: str, stream: Stream, count: int
) -> list[float]:
    """Seconds from starting to join to the first whole Cluster, while the room is live."""
    speaking = asyncio.create_task(speak(speaker_url, stream, framed=False))
    await asyncio.sleep(2.0)
    waits = []
    tally = Tally()
    for _ in range(count):
        started = time.monotonic()
        listener = await open_listener(HOST, port, path, tally)
        while listener.first_cluster_at is None and time.monotonic() - started < 5:  # noqa: ASYNC110
            await asyncio.sleep(0.005)
        if listener.first_cluster_at is not None and listener.got_init:
            waits.append(listener.first_cluster_at - started)
        if listener.transport is not None:
            listener.transport.close()
        await asyncio.sleep(0.3)
    await speaking
    return waits


async def storm(port: int, path: str, count: int) -> dict[str, Any]:
    """``count`` joins at once against the admission rate, retried with jitter like the player."""
    result = JoinResult()
    tally = Tally()
    started = time.monotonic()
    deadline = started + 60
    await asyncio.gather(
        *(join_with_retries(HOST, port, path, tally, result, deadline) for _ in range(count))
    )
    elapsed = (max(result.admitted_at) if result.admitted_at else time.monotonic()) - started
    per_second: dict[int, int] = {}
    for moment in result.admitted_at:
        per_second[int(moment - started)] = per_second.get(int(moment - started), 0) + 1
    for listener in result.listeners:
        if listener.transport is not None:
            listener.transport.close()
    return {
        "admitted": result.admitted,
        "refused_503": result.refused,
        "failed": result.failed,
        "seconds": elapsed,
        "joins_per_s": result.admitted / elapsed if elapsed else float("nan"),
        "peak_per_s": max(per_second.values()) if per_second else 0,
        "load": load(),
    }


# ---- the run -------------------------------------------------------------------------------------


async def measure_crowd(
    name: str,
    nodes: list[Node],
    listen_path: str,
    speaker_url: str,
    stream: Stream,
    count: int,
    probes: int,
    *,
    framed: bool,
    frozen_share: float = 0.01,
) -> dict[str, Any]:
    figures: dict[str, Any] = {"name": name}
    ports = [node.port for node in nodes]
    crowd = Crowd()
    rss_before = sum(node.rss() for node in nodes)
    await gather_listeners(
        ports, listen_path, count, crowd, probe_index=stream.index, probes=probes
    )
    await wait_listeners(nodes, count)
    await asyncio.sleep(2.0)
    figures["kb_per_listener"] = (sum(node.rss() for node in nodes) - rss_before) / count / 1024
    figures["steady"] = await steady(
        nodes, speaker_url, stream, crowd, framed=framed, listeners=count
    )
    if frozen_share:
        frozen = Crowd()
        await gather_listeners(
            ports, listen_path, max(1, int(count * frozen_share)), frozen, frozen=True
        )
        figures["frozen"] = await steady(
            nodes, speaker_url, stream, crowd, framed=framed, listeners=count
        )
        frozen.close()
    crowd.close()
    return figures


async def run(args: argparse.Namespace) -> str:
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    WS_IMPLEMENTATION[0] = args.ws
    stream = Stream.make(args.seconds)
    results: dict[str, Any] = {
        "load_start": load(),
        "started": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    }
    with tempfile.TemporaryDirectory(prefix="bench-rooms-") as raw:
        tmp = Path(raw)
        # The baseline first, then Townsquare, each alone on the machine's two cores.
        port = free_port()
        base = start_node("baseline", ["bench.rooms.baseline"], port, tmp, {})
        try:
            results["baseline"] = await measure_crowd(
                "baseline",
                [base],
                "/listen",
                f"ws://{HOST}:{port}/speak",
                stream,
                args.listeners,
                args.probes,
                framed=True,
            )
        finally:
            base.stop()

        data_dir = tmp / "townsquare"
        node = townsquare_node("townsquare", tmp, data_dir, prepare=True)
        try:
            token, room = await asyncio.to_thread(sign_up_and_open_room, node.port)
            listen_path = f"/api/v1/rooms/{room}/listen"
            speaker_url = f"ws://{HOST}:{node.port}/api/v1/rooms/{room}/speak?access_token={token}"
            results["townsquare"] = await measure_crowd(
                "townsquare",
                [node],
                listen_path,
                speaker_url,
                stream,
                args.listeners,
                args.probes,
                framed=False,
            )
            await wait_listeners_gone([node])
            results["late"] = await late_joiners(
                node.port, listen_path, speaker_url, stream, args.late
            )
        finally:
            node.stop()

        storm_node = townsquare_node(
            "storm", tmp, data_dir, prepare=False, TOWNSQUARE_ROOMS_JOIN_RATE="1000"
        )
        try:
            results["storm"] = await storm(storm_node.port, listen_path, args.storm)
            results["storm_rate"] = 1000
        finally:
            storm_node.stop()

        if not args.skip_machine:
            with redis_server(tmp) as redis_url:
                nodes = [
                    townsquare_node(
                        f"node{n}", tmp, data_dir, prepare=False, TOWNSQUARE_REDIS_URL=redis_url
                    )
                    for n in (1, 2)
                ]
                try:
                    speaker_url = f"ws://{HOST}:{nodes[0].port}/api/v1/rooms/{room}/speak?access_token={token}"
                    results["machine"] = await measure_crowd(
                        "two nodes",
                        nodes,
                        listen_path,
                        speaker_url,
                        stream,
                        args.machine_listeners,
                        args.probes,
                        framed=False,
                        frozen_share=0,
                    )
                finally:
                    for one in nodes:
                        one.stop()
    results["load_end"] = load()
    # The raw figures too, so that a report can be made again from them.
    args.output.with_suffix(".json").write_bytes(orjson.dumps(results))
    return report(args, results)


async def wait_listeners_gone(nodes: list[Node], within: float = 60) -> None:
    deadline = time.monotonic() + within
    while sum(node.stats()["listeners"] for node in nodes) > 0 and time.monotonic() < deadline:  # noqa: ASYNC110
        await asyncio.sleep(0.5)


def main() -> None:
    args = parse_args()
    try:
        import uvloop

        text = uvloop.run(run(args))
    except ImportError:
        text = asyncio.run(run(args))
    args.output.write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
