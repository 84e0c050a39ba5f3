"""``python -m bench`` (``make bench``): Townsquare next to a baseline, on SQLite and PostgreSQL.

For each backend: seed a synthetic instance, start ``townsquare serve --workers N``, then
measure home-timeline requests/s with p50/p99 latency, posts/s with fan-out, how long fan-out
takes to reach every follower, and memory per worker. The baseline (a bare Starlette app on the
same uvicorn set-up, answering with a real timeline body) is measured in the same run.

The home timeline is measured two ways. Closed loop (``--connections`` clients, each asking
again as soon as it is answered) finds the most the server serves; its latencies are a
saturated server's, mostly time queued behind the other connections (32 connections at 950
requests/s wait 34 ms on average whatever a page costs). Open loop (``--open-rates``: requests
sent on a schedule, so many per second, each timed from when it was due, as wrk2 does) gives
the latencies users get when that many requests arrive; a rate the server cannot keep up with
shows as latencies that grow for the whole run and as requests shed.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import hashlib
import os
import platform
import resource
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import httpx
import psutil

from bench.fanout import (
    FanoutDelays,
    fanout_delays_since,
    measure_fanout_delay,
    wait_for_fanout_queue,
)
from bench.load import LoadResult, run_load, run_open_load
from bench.servers import Server, start_baseline, start_townsquare
from tests.postgres_server import DURABLE_OPTIONS, PostgresServer, free_port
from townsquare.db.base import utcnow

TIMELINE = "/api/v1/timelines/home?limit=20"
ROOT = Path(__file__).resolve().parent.parent
TABLE_HEAD = [
    "| Measure | Requests/s | p50 ms | p99 ms | Failed | Worker CPU ms/request "
    "| PostgreSQL CPU ms/request | Load generator CPU ms/request | Load avg |",
    "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
]


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--backends", default="sqlite,postgres")
    parser.add_argument("--accounts", type=int, default=10_000)
    parser.add_argument("--statuses", type=int, default=1_000_000)
    parser.add_argument("--follows-per-account", type=int, default=100)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seconds", type=int, default=15, help="Length of each load run.")
    parser.add_argument(
        "--connections",
        type=int,
        default=32,
        help="Closed-loop clients for the saturating measures (home timeline, posting).",
    )
    parser.add_argument(
        "--open-rates",
        default="500,1000",
        help="Home timeline also at these fixed rates (requests/s, open loop: sent on schedule "
        "whether or not earlier ones were answered, each timed from when it was due); '' for "
        "none.",
    )
    parser.add_argument("--fanout-samples", type=int, default=20)
    parser.add_argument(
        "--measures",
        default="timeline,posting",
        help="What to measure: 'timeline', 'posting' (with fan-out) or both; the baseline "
        "runs with the timeline only.",
    )
    parser.add_argument("--output", type=Path, default=Path("bench-results.md"))
    parser.add_argument(
        "--seed-cache",
        default="var/bench-seed",
        help="Directory keeping seeded SQLite databases between runs ('' to always seed).",
    )
    return parser.parse_args()


def _seed_key(args: argparse.Namespace) -> str:
    """Changes with the size asked for, the seeding code and the migrations."""
    digest = hashlib.sha256(
        f"{args.accounts}/{args.statuses}/{args.follows_per_account}/100".encode()
    )
    sources = sorted((ROOT / "townsquare" / "seed").glob("*.py"))
    sources += sorted((ROOT / "townsquare" / "db" / "migrations" / "versions").glob("*.py"))
    for source in sources:
        digest.update(source.name.encode())
        digest.update(source.read_bytes())
    return digest.hexdigest()[:16]


def seed(data_dir: Path, database_url: str, args: argparse.Namespace) -> tuple[Path, str]:
    """Seed (or copy a cached SQLite seed); returns the tokens file and how it went."""
    tokens = data_dir / "seed-tokens.txt"
    data_dir.mkdir(parents=True, exist_ok=True)
    database = data_dir / "townsquare.sqlite3"
    cache = Path(args.seed_cache) / _seed_key(args) if args.seed_cache else None
    if not database_url and cache is not None and (cache / "townsquare.sqlite3").exists():
        started = time.monotonic()
        shutil.copyfile(cache / "townsquare.sqlite3", database)
        shutil.copyfile(cache / "seed-tokens.txt", tokens)
        took = (cache / "seconds").read_text().strip()
        return tokens, (
            f"Seed copied from the cache in {time.monotonic() - started:.0f} s "
            f"(`townsquare seed --fast` took {took} s)"
        )
    started = time.monotonic()
    command = [str(Path(sys.executable).parent / "townsquare"), "seed", "--fast"]
    command += ["--data-dir", str(data_dir), "--database-url", database_url]
    command += ["--accounts", str(args.accounts), "--statuses", str(args.statuses)]
    command += ["--follows-per-account", str(args.follows_per_account)]
    command += ["--tokens", "100", "--tokens-file", str(tokens)]
    subprocess.run(command, check=True, timeout=1800, stdout=subprocess.DEVNULL)
    seconds = time.monotonic() - started
    if not database_url and cache is not None:
        _store_seed(cache, database, tokens, seconds)
    return tokens, f"Seeded with `townsquare seed --fast` in {seconds:.0f} s"


def _store_seed(cache: Path, database: Path, tokens: Path, seconds: float) -> None:
    """Keep a seed for the next runs, whole or not at all: a consistent copy of the database
    (its write-ahead log included) and its tokens are written aside, then renamed into place,
    so two runs seeding at once, or a run stopped halfway, never leave a mixed cache."""
    partial = cache.with_name(f"{cache.name}.partial-{os.getpid()}")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    with (
        contextlib.closing(sqlite3.connect(database)) as source,
        contextlib.closing(sqlite3.connect(partial / "townsquare.sqlite3")) as copy,
    ):
        source.backup(copy)
    shutil.copyfile(tokens, partial / "seed-tokens.txt")
    (partial / "seconds").write_text(f"{seconds:.0f}\n")
    try:
        partial.rename(cache)
    except OSError:  # another run kept the same seed first
        shutil.rmtree(partial, ignore_errors=True)


@dataclass
class Measured:
    result: LoadResult
    cpu_ms: float
    load: float
    # The PostgreSQL server's CPU per request (None on SQLite): it shares the machine's cores.
    database_cpu_ms: float | None = None
    # The load generator's CPU per request: it too shares the machine's cores.
    generator_cpu_ms: float = 0.0


def open_rates(args: argparse.Namespace) -> list[float]:
    return [float(rate) for rate in args.open_rates.split(",") if rate.strip()]


def postgres_cpu_seconds(pg: PostgresServer) -> float:
    """CPU time (user + system) the server has used so far: the postmaster, its live
    processes (a backend per connection) and those that have exited."""
    pid = int((pg.data_dir / "postmaster.pid").read_text().split()[0])
    postmaster = psutil.Process(pid)
    times = postmaster.cpu_times()
    total = times.user + times.system + times.children_user + times.children_system
    for child in postmaster.children(recursive=True):
        with contextlib.suppress(psutil.NoSuchProcess):
            child_times = child.cpu_times()
            total += child_times.user + child_times.system
    return total


def generator_cpu_seconds() -> float:
    """CPU time (user + system) used so far by this process, where the open-loop and httpx
    generators run, and by its finished children (wrk)."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def measure(
    server: Server, run: Callable[[], LoadResult], pg: PostgresServer | None = None
) -> Measured:
    """A load run, with the workers', PostgreSQL's and the load generator's CPU time per request
    and the machine's load average."""
    cpu_before = server.worker_cpu_seconds()
    database_before = postgres_cpu_seconds(pg) if pg is not None else 0.0
    generator_before = generator_cpu_seconds()
    result = run()
    generator = generator_cpu_seconds() - generator_before
    cpu = server.worker_cpu_seconds() - cpu_before
    requests = max(result.requests, 1)
    database_cpu_ms = None
    if pg is not None:
        database_cpu_ms = (postgres_cpu_seconds(pg) - database_before) / requests * 1000
    return Measured(
        result,
        cpu / requests * 1000,
        os.getloadavg()[0],
        database_cpu_ms,
        generator / requests * 1000,
    )


def row(name: str, measured: Measured) -> str:
    result = measured.result
    database = "n/a" if measured.database_cpu_ms is None else f"{measured.database_cpu_ms:.2f}"
    return (
        f"| {name} | {result.per_second:,.0f} | {result.p50_ms:.1f} | {result.p99_ms:.1f} "
        f"| {result.failed} | {measured.cpu_ms:.2f} | {database} "
        f"| {measured.generator_cpu_ms:.2f} | {measured.load:.1f} |"
    )


def delays_line(what: str, delays: FanoutDelays) -> str:
    return (
        f"- Fan-out delay, {what}, post acknowledged → in all of its "
        f"{delays.followers_mean:.0f} followers' home feeds on average ({delays.samples} posts): "
        f"p50 {delays.p50_ms:,.0f} ms, p99 {delays.p99_ms:,.0f} ms, max {delays.max_ms:,.0f} ms."
    )


@dataclass
class Outcome:
    backend: str
    timeline: Measured | None
    open_loop: dict[float, Measured]
    posting: Measured | None
    fanout: FanoutDelays | None
    rss_mb: float

    def aims(self) -> list[tuple[str, str, bool]]:
        aims = []
        if self.timeline is not None:
            timeline = self.timeline.result
            aims += [
                ("Home timeline p99 < 50 ms", f"{timeline.p99_ms:,.0f} ms", timeline.p99_ms < 50),
                (
                    "Home timeline ≥ 1,000 requests/s (2 workers)",
                    f"{timeline.per_second:,.0f}/s",
                    timeline.per_second >= 1000,
                ),
            ]
        for rate, measured in self.open_loop.items():
            result = measured.result
            aims.append(
                (
                    f"Home timeline p99 < 50 ms at {rate:,.0f} requests/s offered (open loop)",
                    f"{result.p99_ms:,.0f} ms, {result.failed:,} failed",
                    result.p99_ms < 50 and result.failed == 0,
                )
            )
        if self.posting is not None and self.fanout is not None:
            posting = self.posting.result
            aims += [
                (
                    "≥ 300 posts/s sustained",
                    f"{posting.per_second:,.0f}/s",
                    posting.per_second >= 300,
                ),
                (
                    "Fan-out p99 < 5 s (under the posting load)",
                    f"{self.fanout.p99_ms / 1000:,.1f} s",
                    self.fanout.samples > 0 and self.fanout.p99_ms < 5000,
                ),
            ]
        aims.append(("< 300 MB resident per worker", f"{self.rss_mb:,.0f} MB", self.rss_mb < 300))
        return aims


# Home-timeline requests before the timeline is measured.
WARM_UP_SECONDS = 10


def run_backend(
    backend: str, args: argparse.Namespace, work: Path, lines: list[str]
) -> tuple[Path, Outcome]:
    """Measures one backend; returns a real timeline body for the baseline to serve."""
    pg: PostgresServer | None = None
    database_url = ""
    data_dir = work / backend
    if backend == "postgres":
        pg = PostgresServer(options=DURABLE_OPTIONS)
        pg.start()
        database_url = asyncio.run(pg.create_database("townsquare_bench"))
    server: Server | None = None
    try:
        tokens, seeded = seed(data_dir, database_url, args)
        if pg is not None:
            # What autovacuum does to freshly loaded tables in the minutes after (visibility
            # maps for index-only scans, hint bits), done before measuring rather than during.
            asyncio.run(pg.execute("VACUUM ANALYZE", "townsquare_bench"))
        server = start_townsquare(
            data_dir, database_url, free_port(), args.workers, work / f"{backend}.log"
        )
        effective_url = database_url or f"sqlite+aiosqlite:///{data_dir / 'townsquare.sqlite3'}"
        users = [(line.split()[0], line.split()[1]) for line in tokens.read_text().splitlines()]
        token = users[0][1]
        body = httpx.get(
            server.url + TIMELINE, headers={"Authorization": f"Bearer {token}"}, timeout=30
        )
        body.raise_for_status()
        body_file = work / "timeline.json"
        body_file.write_bytes(body.content)

        def load(path: str, method: str = "GET") -> LoadResult:
            assert server is not None
            return run_load(
                server.url,
                path,
                tokens,
                method=method,
                seconds=args.seconds,
                connections=args.connections,
                work_dir=work,
            )

        def open_load(rate: float) -> LoadResult:
            assert server is not None
            return run_open_load(server.url, TIMELINE, tokens, seconds=args.seconds, rate=rate)

        timeline: Measured | None = None
        open_loop: dict[float, Measured] = {}
        if "timeline" in args.measures:
            # Warm-up at the measured concurrency: the workers' pools grow to what the load
            # needs, and each status is rendered once, before anything is timed (the first
            # 15 s on PostgreSQL otherwise had a p99 of 146 ms, the next 32 ms).
            run_load(
                server.url,
                TIMELINE,
                tokens,
                seconds=WARM_UP_SECONDS,
                connections=args.connections,
                work_dir=work,
            )
            timeline = measure(server, lambda: load(TIMELINE), pg)
            for rate in open_rates(args):
                open_loop[rate] = measure(server, partial(open_load, rate), pg)
        memory = server.worker_rss_mb()
        posting: Measured | None = None
        memory_after: list[float] = []
        if "posting" in args.measures:
            quiet = asyncio.run(
                measure_fanout_delay(server.url, effective_url, users, args.fanout_samples)
            )
            posting_started = utcnow()
            posting = measure(server, lambda: load("/api/v1/statuses", "POST"), pg)
            drained = asyncio.run(wait_for_fanout_queue(effective_url))
            under_load = asyncio.run(fanout_delays_since(effective_url, posting_started))
            memory_after = server.worker_rss_mb()
    finally:
        if server is not None:
            server.stop()
        if pg is not None:
            pg.stop()

    lines += [
        f"### {backend}",
        "",
        f"{seeded}. Timeline body: {len(body.content):,} bytes (20 statuses).",
        "",
        *TABLE_HEAD,
        *([row("Home timeline (`GET " + TIMELINE + "`)", timeline)] if timeline else []),
        *(
            row(f"Home timeline, open loop at {rate:,.0f}/s offered", measured)
            for rate, measured in open_loop.items()
        ),
        *([row("Posting (`POST /api/v1/statuses`, with fan-out)", posting)] if posting else []),
        "",
    ]
    if posting is not None:
        lines += [
            delays_line(f"quiet instance, {args.fanout_samples} posts one at a time", quiet),
            delays_line(f"every post of the {args.seconds} s posting run", under_load),
            f"- Fan-out backlog after {args.seconds} s of posting drained in {drained:.1f} s "
            f"({posting.result.requests:,} posts).",
        ]
    lines += [
        f"- Memory per worker (RSS) after the timeline run: {', '.join(map(str, memory))} MB"
        + (f"; after posting: {', '.join(map(str, memory_after))} MB." if memory_after else "."),
        "",
    ]
    outcome = Outcome(
        backend,
        timeline,
        open_loop,
        posting,
        under_load if posting is not None else None,
        max(memory + memory_after),
    )
    return body_file, outcome


def measure_baseline(args: argparse.Namespace, work: Path, body_file: Path) -> list[str]:
    print("benchmarking the baseline ...", file=sys.stderr)
    baseline = start_baseline(body_file, free_port(), args.workers, work / "baseline.log")
    try:
        tokens = next(work.glob("*/seed-tokens.txt"))
        result = measure(
            baseline,
            lambda: run_load(
                baseline.url,
                TIMELINE,
                tokens,
                seconds=args.seconds,
                connections=args.connections,
                work_dir=work,
            ),
        )
        memory = baseline.worker_rss_mb()
    finally:
        baseline.stop()
    return [
        "### Baseline (bare Starlette, same uvicorn options, same timeline body)",
        "",
        *TABLE_HEAD,
        row("Fixed timeline JSON", result),
        "",
        f"- Memory per worker (RSS): {', '.join(map(str, memory))} MB. "
        f"Load tool: {result.result.tool}.",
        "",
    ]


def main() -> None:
    args = parse_args()
    lines = [
        f"## Run of {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC",
        "",
        f"Machine: {psutil.cpu_count()} CPUs, {psutil.virtual_memory().total / 2**30:.0f} GB, "
        f"{platform.platform()}, Python {platform.python_version()}. Load generator and "
        "servers share the machine.",
        "",
        f"Instance: {args.accounts:,} accounts, {args.statuses:,} statuses, "
        f"{args.follows_per_account} follows per account; {args.workers} workers; "
        f"{args.connections} connections for {args.seconds} s per measure (closed loop), and "
        f"the home timeline at {args.open_rates or 'no'} requests/s offered (open loop); "
        "rate limits off.",
        "",
        f"Command: `python -m bench {' '.join(sys.argv[1:])}`. Load average (1, 5, 15 min) "
        f"at the start: {', '.join(f'{value:.1f}' for value in os.getloadavg())}.",
        "",
    ]
    outcomes: list[Outcome] = []
    with tempfile.TemporaryDirectory(prefix="townsquare-bench-") as temp:
        work = Path(temp)
        body_file: Path | None = None
        for backend in args.backends.split(","):
            print(f"benchmarking {backend} ...", file=sys.stderr)
            body_file, outcome = run_backend(backend.strip(), args, work, lines)
            outcomes.append(outcome)
        assert body_file is not None
        if "timeline" in args.measures:
            lines += measure_baseline(args, work, body_file)
    lines += [
        "### Aims",
        "",
        "| Aim | " + " | ".join(outcome.backend for outcome in outcomes) + " |",
        "| --- |" + " --- |" * len(outcomes),
    ]
    for index, (aim, _, _) in enumerate(outcomes[0].aims()):
        cells = []
        for outcome in outcomes:
            _, figure, met = outcome.aims()[index]
            cells.append(f"{figure} ({'met' if met else 'not met'})")
        lines.append(f"| {aim} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "Load average (1, 5, 15 min) at the end: "
        f"{', '.join(f'{value:.1f}' for value in os.getloadavg())}.",
        "",
    ]
    report = "\n".join(lines)
    args.output.write_text(report)
    print(report)


if __name__ == "__main__":
    main()
