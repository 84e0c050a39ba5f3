"""``python -m bench.rooms``: live audio rooms on this machine, next to a bare broadcast baseline.

One speaker sends a 32 kbit/s WebM/Opus stream in 250 ms chunks (made with PyAV). Against one
Townsquare node (``create_app`` under uvicorn, as ``townsquare serve`` runs it) and against a
bare ``websockets`` broadcast server, in the same run: memory per idle listener, deliveries a
second and per CPU-second, relay latency (chunk in → last write) p50/p99, end-to-end latency
at probe listeners, then the same with 1% frozen listeners; for Townsquare also the time a late
joiner waits for audio, a join storm against the admission rate, and two nodes joined by Redis.
The listeners are spread over several client processes (``bench/rooms/crowd.py``), whose CPU is
reported beside the server's, so that a reader can see which of the two was the limit.
Every phase is bounded in time; the load average is recorded next to the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson

from bench.rooms.clients import Tally, open_listener
from bench.rooms.crowd import Clients, Crowd, default_processes
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
from bench.rooms.storm import served, storm_live
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
    parser.add_argument(
        "--frozen-rounds",
        type=int,
        default=5,
        help="Pairs of streams without and with 1%% frozen listeners, in alternating order.",
    )
    parser.add_argument("--skip-machine", action="store_true")
    parser.add_argument("--ws", default="auto", help="uvicorn's WebSocket implementation.")
    parser.add_argument(
        "--client-processes",
        type=int,
        default=0,
        help="Client processes holding the listeners (default: one per 2,500 listeners, up to 4).",
    )
    parser.add_argument("--output", type=Path, default=Path("bench-rooms.md"))
    return parser.parse_args()


# ---- measuring -----------------------------------------------------------------------------------


def percentile(values: list[float], share: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def own_cpu() -> float:
    """CPU-seconds used so far by this process (the speaker, the probes' bookkeeping)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def load() -> str:
    one, five, _fifteen = os.getloadavg()
    return f"{one:.1f}/{five:.1f}"


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
    clients: Clients,
    *,
    framed: bool,
    listeners: int,
) -> dict[str, Any]:
    """Stream once to the listeners; the figures of that stream."""
    received_before, _ = await clients.snapshot()
    await clients.clear()
    before = [node.stats() for node in nodes]
    cpu_before = [node.cpu() for node in nodes]
    clients_cpu_before = clients.cpu()
    own_cpu_before = own_cpu()
    started = time.monotonic()
    sent_at = await speak(speaker_url, stream, framed=framed)
    elapsed = time.monotonic() - started
    after = [node.stats() for node in nodes]
    cpu = sum(node.cpu() for node in nodes) - sum(cpu_before)
    clients_cpu = [now - then for now, then in zip(clients.cpu(), clients_cpu_before, strict=True)]
    speaker_cpu = own_cpu() - own_cpu_before
    received, arrivals = await clients.snapshot()
    expected = len(stream.clusters) * listeners
    # What had not arrived by the end of the stream: still on its way, or never sent?
    drained = received
    deadline = time.monotonic() + 15
    while drained < received_before + expected and time.monotonic() < deadline:
        await asyncio.sleep(1.0)
        now, _ = await clients.snapshot()
        if now == drained:
            break
        drained = now
    deliveries = sum(a["deliveries"] - b["deliveries"] for a, b in zip(after, before, strict=True))
    relay = []
    for a, b in zip(after, before, strict=True):
        relay += a["latencies"][len(b["latencies"]) :]
    # Arrivals are time.monotonic() in the client processes: CLOCK_MONOTONIC, the machine's.
    end_to_end = [arrival - sent_at[index] for index, arrival in arrivals if index in sent_at]
    return {
        "deliveries_per_s": deliveries / elapsed,
        "deliveries_per_cpu_s": deliveries / cpu if cpu else float("nan"),
        "cpu_share": cpu / elapsed,
        "relay_ms": [round(value * 1000, 3) for value in relay],
        "relay_p50_ms": percentile(relay, 0.5) * 1000,
        "relay_p99_ms": percentile(relay, 0.99) * 1000,
        "e2e_p50_ms": percentile(end_to_end, 0.5) * 1000,
        "e2e_p99_ms": percentile(end_to_end, 0.99) * 1000,
        "received": (received - received_before) / expected if expected else 0.0,
        "received_drained": (drained - received_before) / expected if expected else 0.0,
        "client_processes": len(clients_cpu),
        "client_cpu_share": sum(clients_cpu) / elapsed,
        "client_busiest_share": max(clients_cpu) / elapsed,
        "speaker_cpu_share": speaker_cpu / elapsed,
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


def frozen_summary(rounds: list[dict[str, Any]]) -> dict[str, Any]:
    """Per pair of streams, the change that frozen listeners made to the others' relay latency;
    the median change and its spread, and the p99 of all the pairs' latencies together."""

    def change(pair: dict[str, Any], key: str) -> float:
        before = pair["steady"][key]
        return (pair["frozen"][key] / before - 1) * 100 if before else float("nan")

    p99 = [change(pair, "relay_p99_ms") for pair in rounds]
    p50 = [change(pair, "relay_p50_ms") for pair in rounds]
    # The server's CPU over each stream: what the frozen listeners cost in work, whatever the
    # machine's other load does to the wall clock.
    cpu = [change(pair, "cpu_share") for pair in rounds]
    pooled = {
        kind: [value for pair in rounds for value in pair[kind]["relay_ms"]]
        for kind in ("steady", "frozen")
    }
    steady_p99 = percentile(pooled["steady"], 0.99)
    frozen_p99 = percentile(pooled["frozen"], 0.99)
    return {
        "count": len(rounds),
        "p99_changes": p99,
        "p99_change_median": statistics.median(p99),
        "p50_changes": p50,
        "p50_change_median": statistics.median(p50),
        "cpu_changes": cpu,
        "cpu_change_median": statistics.median(cpu),
        "pooled_steady_p99_ms": steady_p99,
        "pooled_frozen_p99_ms": frozen_p99,
        "pooled_p99_change": (frozen_p99 / steady_p99 - 1) * 100 if steady_p99 else float("nan"),
        "pairs": [
            {
                kind: {
                    key: pair[kind][key]
                    for key in (
                        "relay_p50_ms",
                        "relay_p99_ms",
                        "received",
                        "load",
                        "skipped",
                        "cpu_share",
                        "deliveries_per_s",
                    )
                }
                for kind in ("steady", "frozen")
            }
            for pair in rounds
        ],
        "others_received_min": min(pair["frozen"]["received"] for pair in rounds),
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
    client_processes: int,
    frozen_share: float = 0.01,
    frozen_rounds: int = 3,
) -> dict[str, Any]:
    figures: dict[str, Any] = {"name": name}
    ports = [node.port for node in nodes]
    clients = Clients(client_processes or default_processes(count))
    try:
        rss_before = sum(node.rss() for node in nodes)
        await clients.open(ports, listen_path, count, probes, stream.index)
        await wait_listeners(nodes, count)
        await asyncio.sleep(2.0)
        figures["kb_per_listener"] = (sum(node.rss() for node in nodes) - rss_before) / count / 1024
        figures["steady"] = await steady(
            nodes, speaker_url, stream, clients, framed=framed, listeners=count
        )

        async def with_frozen() -> dict[str, Any]:
            # Held in this process and opened afresh for each stream: they read nothing, so
            # they cost this process nothing.
            frozen = Crowd()
            await frozen.open(ports, listen_path, max(1, int(count * frozen_share)), frozen=True)
            try:
                return await steady(
                    nodes, speaker_url, stream, clients, framed=framed, listeners=count
                )
            finally:
                frozen.close()

        # Streams without and with frozen listeners alternate (A B, B A, A B, ...), so that a
        # drift in the machine's load weighs on both alike; each pair gives one change. The
        # first stream above is not one of them: a first stream is often slower.
        rounds = []
        for number in range(frozen_rounds if frozen_share else 0):
            pair: dict[str, Any] = {}
            for kind in ("frozen", "steady") if number % 2 else ("steady", "frozen"):
                if kind == "frozen":
                    pair[kind] = await with_frozen()
                else:
                    pair[kind] = await steady(
                        nodes, speaker_url, stream, clients, framed=framed, listeners=count
                    )
                await asyncio.sleep(1.0)  # the frozen listeners are let go
            rounds.append(pair)
        if rounds:
            figures["frozen"] = rounds[0]["frozen"]
            figures["rounds"] = frozen_summary(rounds)
    finally:
        clients.stop()
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
                client_processes=args.client_processes,
                frozen_rounds=args.frozen_rounds,
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
                client_processes=args.client_processes,
                frozen_rounds=args.frozen_rounds,
            )
            await wait_listeners_gone([node])
            results["late"] = await late_joiners(
                node.port, listen_path, speaker_url, stream, args.late
            )
        finally:
            node.stop()

        # The join storm, into the live room (a speaker streams throughout): one process
        # admitting 1,000 joins a second.
        storm_node = townsquare_node(
            "storm", tmp, data_dir, prepare=False, TOWNSQUARE_ROOMS_JOIN_RATE="1000"
        )
        try:
            results["storm"] = await storm_live(
                storm_node.port, room, token, args.storm, storm_node.cpu
            )
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
                        client_processes=args.client_processes,
                        frozen_share=0,
                    )
                finally:
                    for one in nodes:
                        one.stop()
                # The same storm against ``townsquare serve --workers 2`` (its workers sharing
                # the room through Redis), each worker admitting 1,000 joins a second.
                with served(tmp, 2, 1000, redis_url) as (port, cpu):
                    results["storm_two_workers"] = await storm_live(
                        port, room, token, args.storm, cpu
                    )
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
