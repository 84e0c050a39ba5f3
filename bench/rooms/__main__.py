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
import multiprocessing
import os
import resource
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import orjson

from bench.rooms.clients import (
    Tally,
    open_listener,
    storm_part,
)
from bench.rooms.crowd import Clients, Crowd, default_processes, shares
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


async def storm(port: int, path: str, count: int) -> dict[str, Any]:
    """``count`` joins at once against the admission rate, retried with jitter like the player.

    The joins come from several client processes (one per 750), so that what is measured is
    the server's admission and not how fast one Python process can open connections.
    """
    processes = max(1, min(4, count // 750))
    context = multiprocessing.get_context("spawn")
    loop = asyncio.get_running_loop()
    # Time for the processes to start; every share begins at the same moment.
    started = time.monotonic() + 3.0
    deadline = started + 60
    with ProcessPoolExecutor(processes, mp_context=context) as pool:
        parts = await asyncio.gather(
            *(
                loop.run_in_executor(pool, storm_part, HOST, port, path, share, started, deadline)
                for share in shares(count, processes)
            )
        )
    admitted_at = [moment for part in parts for moment in part["admitted_at"]]
    admitted = sum(part["admitted"] for part in parts)
    elapsed = (max(admitted_at) if admitted_at else time.monotonic()) - started
    per_second: dict[int, int] = {}
    for moment in admitted_at:
        per_second[int(moment - started)] = per_second.get(int(moment - started), 0) + 1
    return {
        "admitted": admitted,
        "refused_503": sum(part["refused"] for part in parts),
        "failed": sum(part["failed"] for part in parts),
        "seconds": elapsed,
        "joins_per_s": admitted / elapsed if elapsed else float("nan"),
        "peak_per_s": max(per_second.values()) if per_second else 0,
        "processes": processes,
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
    client_processes: int,
    frozen_share: float = 0.01,
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
        if frozen_share:
            # Held in this process: they read nothing, so they cost it nothing.
            frozen = Crowd()
            await frozen.open(ports, listen_path, max(1, int(count * frozen_share)), frozen=True)
            figures["frozen"] = await steady(
                nodes, speaker_url, stream, clients, framed=framed, listeners=count
            )
            frozen.close()
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
                        client_processes=args.client_processes,
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
