"""``python -m bench.web``: what the web app's home page costs next to the API's home timeline.

One person with a full home timeline (20 posts) asks, over and over, for the same twenty posts:
as the server-rendered page (``GET /`` with the session cookie) and, as the baseline, as JSON
from the Mastodon API (``GET /api/v1/timelines/home?limit=20``, the session's token as bearer).
Both are measured in the same run against the same ``townsquare serve``, with the same client.
It also reports what a first visit downloads.
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import os
import re
import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from bench.servers import start_townsquare
from tests.postgres_server import free_port

POSTS = 20
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


@dataclass
class Measured:
    name: str
    requests_per_second: float
    p50_ms: float
    p99_ms: float
    failed: int
    body_bytes: int


async def _load(
    url: str, path: str, headers: dict[str, str], seconds: float, connections: int, name: str
) -> Measured:
    latencies: list[float] = []
    failed = 0
    size = 0
    deadline = time.monotonic() + seconds

    async def worker(client: httpx.AsyncClient) -> None:
        nonlocal failed, size
        while time.monotonic() < deadline:
            started = time.perf_counter()
            answer = await client.get(path)
            latencies.append(time.perf_counter() - started)
            if answer.status_code != 200:
                failed += 1
            size = len(answer.content)

    limits = httpx.Limits(max_connections=connections)
    async with httpx.AsyncClient(base_url=url, headers=headers, limits=limits) as client:
        started = time.monotonic()
        await asyncio.gather(*(worker(client) for _ in range(connections)))
        elapsed = time.monotonic() - started
    ordered = sorted(latencies)
    return Measured(
        name,
        len(ordered) / elapsed,
        statistics.median(ordered) * 1000,
        ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000,
        failed,
        size,
    )


def _prepare(url: str) -> str:
    """Sign up through the web pages and post; returns the session token."""
    with httpx.Client(base_url=url, timeout=30) as browser:
        token = CSRF.search(browser.get("/auth/sign_up").text)
        assert token
        browser.post(
            "/auth/sign_up",
            data={
                "csrf_token": token.group(1),
                "username": "reader",
                "email": "reader@example.test",
                "password": "bench password",
                "agreement": "on",
            },
        )
        session = browser.cookies["townsquare_session"]
        csrf = CSRF.search(browser.get("/").text)
        assert csrf
        for number in range(POSTS):
            answer = browser.post(
                "/statuses",
                data={"csrf_token": csrf.group(1), "status": f"Post {number} about #bench"},
                headers={"Accept": "application/json"},
            )
            answer.raise_for_status()
        return session


def _weights(url: str, session: str) -> list[tuple[str, int, int]]:
    rows = []
    with httpx.Client(base_url=url, cookies={"townsquare_session": session}) as browser:
        for path in ("/", "/static/web/app.css", "/static/web/app.js"):
            body = browser.get(path).content
            rows.append((path, len(body), len(gzip.compress(body))))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.web", description=__doc__)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        port = free_port()
        server = start_townsquare(Path(tmp) / "var", "", port, 1, Path(tmp) / "server.log")
        try:
            session = _prepare(server.url)
            time.sleep(2)  # fan-out of the last posts
            targets = [
                (
                    "web home page (HTML)",
                    "/",
                    {"Cookie": f"townsquare_session={session}", "Accept": "text/html"},
                ),
                (
                    "API home timeline (JSON), baseline",
                    "/api/v1/timelines/home?limit=20",
                    {"Authorization": f"Bearer {session}"},
                ),
            ]
            results = []
            # Alternated rounds, so a neighbour's load on the machine falls on both alike.
            for round_number in range(args.rounds):
                order = targets if round_number % 2 == 0 else targets[::-1]
                for name, path, headers in order:
                    measured = asyncio.run(
                        _load(server.url, path, headers, args.seconds, args.connections, name)
                    )
                    results.append(measured)
            weights = _weights(server.url, session)
        finally:
            server.stop()
    print(
        f"{POSTS} posts, 1 worker, {args.connections} connections, "
        f"{args.rounds} rounds of {args.seconds:g} s each, load average {os.getloadavg()[0]:.1f}\n"
    )
    print("| Measure | Requests/s | p50 ms | p99 ms | Failed | Body bytes |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for row in sorted(results, key=lambda measured: measured.name, reverse=True):
        print(
            f"| {row.name} | {row.requests_per_second:.0f} | {row.p50_ms:.1f} | "
            f"{row.p99_ms:.1f} | {row.failed} | {row.body_bytes} |"
        )
    print("\n| First visit | Bytes | Gzipped |\n| --- | ---: | ---: |")
    for path, raw, packed in weights:
        print(f"| `{path}` | {raw} | {packed} |")


if __name__ == "__main__":
    main()
