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
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import orjson
import psutil
from websockets.asyncio.client import connect

from bench.rooms.clients import JoinResult, Listener, Tally, join_with_retries, open_listener
from tests.postgres_server import free_port
from tests.rooms.webm import opus_webm
from townsquare.rooms import frames
from townsquare.rooms.ebml import ClusterSplitter

CHUNK_SECONDS = 0.25
HOST = "127.0.0.1"


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


# ---- the stream --------------------------------------------------------------------------------


@dataclass
class Stream:
    """A WebM/Opus stream, its 250 ms chunks, and which chunk completes which Cluster."""

    data: bytes
    chunks: list[bytes]
    clusters: list[bytes]
    init: bytes
    completes: dict[int, list[int]]  # chunk index → indexes of the Clusters it completes
    index: dict[bytes, int]

    @classmethod
    def make(cls, seconds: float) -> Stream:
        data = opus_webm(seconds, bitrate=32_000, cluster_ms=250)
        per_chunk = max(1, int(len(data) / seconds * CHUNK_SECONDS))
        chunks = [data[i : i + per_chunk] for i in range(0, len(data), per_chunk)]
        splitter = ClusterSplitter()
        clusters: list[bytes] = []
        completes: dict[int, list[int]] = {}
        for number, chunk in enumerate(chunks):
            done = splitter.feed(chunk)
            completes[number] = list(range(len(clusters), len(clusters) + len(done)))
            clusters += done
        assert splitter.init_segment is not None
        return cls(
            data,
            chunks,
            clusters,
            splitter.init_segment,
            completes,
            {cluster: i for i, cluster in enumerate(clusters)},
        )


async def speak(url: str, stream: Stream, *, framed: bool) -> dict[int, float]:
    """Send the stream in real time; returns when each Cluster's last byte was sent.

    ``framed``: send ready-made relay frames (for the baseline, which parses nothing)."""
    sent_at: dict[int, float] = {}
    async with connect(url, max_size=None, compression=None) as speaker:
        if framed:
            await speaker.send(frames.media_frame(frames.INIT, 1, stream.init))
        start = time.monotonic()
        for number, chunk in enumerate(stream.chunks):
            delay = start + number * CHUNK_SECONDS - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            now = time.monotonic()
            if framed:
                for index in stream.completes[number]:
                    await speaker.send(
                        frames.media_frame(frames.CLUSTER, 1, stream.clusters[index])
                    )
            else:
                await speaker.send(chunk)
            for index in stream.completes[number]:
                sent_at[index] = now
        await asyncio.sleep(1.0)  # let the last Clusters drain before the track ends
    return sent_at


# ---- servers -----------------------------------------------------------------------------------


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


WS_IMPLEMENTATION = ["auto"]


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
    return report(args, results)


async def wait_listeners_gone(nodes: list[Node], within: float = 60) -> None:
    deadline = time.monotonic() + within
    while sum(node.stats()["listeners"] for node in nodes) > 0 and time.monotonic() < deadline:  # noqa: ASYNC110
        await asyncio.sleep(0.5)


def report(args: argparse.Namespace, results: dict[str, Any]) -> str:
    ts, base = results["townsquare"], results["baseline"]

    def row(label: str, key: str, phase: str, fmt: str, aim: str) -> str:
        return (
            f"| {label} | {format(ts[phase][key], fmt)} | {format(base[phase][key], fmt)} | {aim} |"
        )

    frozen_change = (ts["frozen"]["relay_p99_ms"] / ts["steady"]["relay_p99_ms"] - 1) * 100
    base_change = (base["frozen"]["relay_p99_ms"] / base["steady"]["relay_p99_ms"] - 1) * 100
    late = results["late"]
    lines = [
        f"Run {results['started']}, `python -m bench.rooms --listeners {args.listeners} "
        f"--seconds {args.seconds:g}` on {os.cpu_count()} cores; load average (1/5 min) "
        f"{results['load_start']} at the start, {results['load_end']} at the end.",
        "",
        f"One node, {args.listeners} listeners ({args.probes} of them probes), one speaker "
        "(32 kbit/s Opus, 250 ms chunks):",
        "",
        "| Figure | Townsquare | Baseline (bare websockets broadcast) | Aim |",
        "| --- | --- | --- | --- |",
        f"| Memory per idle listener (KB) | {ts['kb_per_listener']:.1f} | "
        f"{base['kb_per_listener']:.1f} | < 32 |",
        row("Deliveries per second", "deliveries_per_s", "steady", ".0f", "—"),
        row(
            "Deliveries per CPU-second of the server",
            "deliveries_per_cpu_s",
            "steady",
            ".0f",
            "≥ 40,000",
        ),
        row("Server CPU (cores busy)", "cpu_share", "steady", ".2f", "—"),
        row("Relay latency p50 (ms, chunk in → last write)", "relay_p50_ms", "steady", ".1f", "—"),
        row("Relay latency p99 (ms)", "relay_p99_ms", "steady", ".1f", "< 100"),
        row(
            "Probe latency p50 (ms, chunk sent → Cluster received)",
            "e2e_p50_ms",
            "steady",
            ".1f",
            "—",
        ),
        row("Probe latency p99 (ms)", "e2e_p99_ms", "steady", ".1f", "—"),
        row("Clusters received / (sent x listeners)", "received", "steady", ".3f", "1"),
        row("Load average during the stream", "load", "steady", "", "—"),
        row("With 1% frozen listeners: relay p99 (ms)", "relay_p99_ms", "frozen", ".1f", "—"),
        f"| … change of the others' relay p99 | {frozen_change:+.0f}% | {base_change:+.0f}% | "
        "< 10% |",
        row("… probe latency p99 (ms)", "e2e_p99_ms", "frozen", ".1f", "—"),
        row("… Clusters received by the others", "received", "frozen", ".3f", "1"),
        "",
    ]
    if late:
        lines += [
            f"Late joiners ({len(late)}, while the room is live): from starting to connect to the "
            f"first whole Cluster after the init segment, p50 {statistics.median(late) * 1000:.0f} "
            f"ms, max {max(late) * 1000:.0f} ms (aim: audio within 1.5 s).",
            "",
        ]
    s = results["storm"]
    lines += [
        f"Join storm: {args.storm} listeners joining at once against an admission rate of "
        f"{results['storm_rate']}/s, retrying after 503 with jitter: {s['admitted']} admitted in "
        f"{s['seconds']:.1f} s ({s['joins_per_s']:.0f} joins/s, peak {s['peak_per_s']}/s), "
        f"{s['refused_503']} answers 503, {s['failed']} failures; load {s['load']}.",
        "",
    ]
    if "machine" in results:
        m = results["machine"]
        st = m["steady"]
        lines += [
            f"Two nodes on this machine joined by Redis pub/sub, {args.machine_listeners} "
            f"listeners split between them, the speaker on the first: "
            f"{st['deliveries_per_s']:.0f} deliveries/s, {st['cpu_share']:.2f} cores busy, relay "
            f"p99 {st['relay_p99_ms']:.1f} ms, probe latency p50/p99 {st['e2e_p50_ms']:.0f}/"
            f"{st['e2e_p99_ms']:.0f} ms, {st['received']:.3f} of Clusters received, "
            f"{m['kb_per_listener']:.1f} KB per listener; load {st['load']}.",
            "",
        ]
    return "\n".join(lines)


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
