"""``python -m bench`` (``make bench``): Townsquare next to a baseline, on SQLite and PostgreSQL.

For each backend: seed a synthetic instance, start ``townsquare serve --workers N``, then
measure home-timeline requests/s with p50/p99 latency, posts/s with fan-out, how long fan-out
takes to reach every follower, and memory per worker. The baseline (a bare Starlette app on the
same uvicorn set-up, answering with a real timeline body) is measured in the same run.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import psutil

from bench.fanout import measure_fanout_delay, wait_for_fanout_queue
from bench.load import LoadResult, run_load
from bench.servers import Server, start_baseline, start_townsquare
from tests.postgres_server import PostgresServer, free_port

TIMELINE = "/api/v1/timelines/home?limit=20"


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--backends", default="sqlite,postgres")
    parser.add_argument("--accounts", type=int, default=2_000)
    parser.add_argument("--statuses", type=int, default=200_000)
    parser.add_argument("--follows-per-account", type=int, default=50)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seconds", type=int, default=15, help="Length of each load run.")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--fanout-samples", type=int, default=20)
    parser.add_argument("--output", type=Path, default=Path("bench-results.md"))
    return parser.parse_args()


def seed(data_dir: Path, database_url: str, args: argparse.Namespace) -> Path:
    tokens = data_dir / "seed-tokens.txt"
    command = [str(Path(sys.executable).parent / "townsquare"), "seed", "--fast"]
    command += ["--data-dir", str(data_dir), "--database-url", database_url]
    command += ["--accounts", str(args.accounts), "--statuses", str(args.statuses)]
    command += ["--follows-per-account", str(args.follows_per_account)]
    command += ["--tokens", "100", "--tokens-file", str(tokens)]
    subprocess.run(command, check=True, timeout=1800, stdout=subprocess.DEVNULL)
    return tokens


def row(name: str, result: LoadResult) -> str:
    return (
        f"| {name} | {result.per_second:,.0f} | {result.p50_ms:.1f} | {result.p99_ms:.1f} "
        f"| {result.failed} |"
    )


def run_backend(backend: str, args: argparse.Namespace, work: Path, lines: list[str]) -> Path:
    """Measures one backend; returns a real timeline body for the baseline to serve."""
    pg: PostgresServer | None = None
    database_url = ""
    data_dir = work / backend
    if backend == "postgres":
        pg = PostgresServer()
        pg.start()
        database_url = asyncio.run(pg.create_database("townsquare_bench"))
    server: Server | None = None
    try:
        started = time.monotonic()
        tokens = seed(data_dir, database_url, args)
        seeded = time.monotonic() - started
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

        run_load(server.url, TIMELINE, tokens, seconds=2, connections=8, work_dir=work)
        timeline = load(TIMELINE)
        memory = server.worker_rss_mb()
        delays = asyncio.run(
            measure_fanout_delay(server.url, effective_url, users, args.fanout_samples)
        )
        posting = load("/api/v1/statuses", "POST")
        drained = asyncio.run(wait_for_fanout_queue(effective_url))
    finally:
        if server is not None:
            server.stop()
        if pg is not None:
            pg.stop()

    lines += [
        f"### {backend}",
        "",
        f"Seeded in {seeded:.0f} s. Timeline body: {len(body.content):,} bytes (20 statuses).",
        "",
        "| Measure | Requests/s | p50 ms | p99 ms | Failed |",
        "| --- | ---: | ---: | ---: | ---: |",
        row("Home timeline (`GET " + TIMELINE + "`)", timeline),
        row("Posting (`POST /api/v1/statuses`, with fan-out)", posting),
        "",
        f"- Fan-out delay, post acknowledged → in all {delays.followers_mean:.0f} followers' "
        f"home feeds (mean audience), {delays.samples} posts one at a time: "
        f"p50 {delays.p50_ms:.0f} ms, max {delays.max_ms:.0f} ms.",
        f"- Fan-out backlog after {args.seconds} s of posting drained in {drained:.1f} s "
        f"({posting.requests:,} posts).",
        f"- Memory per worker after the timeline run (RSS): {', '.join(map(str, memory))} MB.",
        "",
    ]
    return body_file


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
        f"{args.connections} connections for {args.seconds} s per measure; rate limits off.",
        "",
    ]
    with tempfile.TemporaryDirectory(prefix="townsquare-bench-") as temp:
        work = Path(temp)
        body_file: Path | None = None
        for backend in args.backends.split(","):
            print(f"benchmarking {backend} ...", file=sys.stderr)
            body_file = run_backend(backend.strip(), args, work, lines)
        assert body_file is not None
        print("benchmarking the baseline ...", file=sys.stderr)
        baseline = start_baseline(body_file, free_port(), args.workers, work / "baseline.log")
        try:
            tokens = next(work.glob("*/seed-tokens.txt"))
            result = run_load(
                baseline.url,
                TIMELINE,
                tokens,
                seconds=args.seconds,
                connections=args.connections,
                work_dir=work,
            )
            memory = baseline.worker_rss_mb()
        finally:
            baseline.stop()
    lines += [
        "### Baseline (bare Starlette, same uvicorn options, same timeline body)",
        "",
        "| Measure | Requests/s | p50 ms | p99 ms | Failed |",
        "| --- | ---: | ---: | ---: | ---: |",
        row("Fixed timeline JSON", result),
        "",
        f"- Memory per worker (RSS): {', '.join(map(str, memory))} MB. Load tool: {result.tool}.",
        "",
    ]
    report = "\n".join(lines)
    args.output.write_text(report)
    print(report)


if __name__ == "__main__":
    main()
