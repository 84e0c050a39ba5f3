"""The legitimate clients: a fixed set that keeps using the instance while it is attacked.

Logged-in clients read their home timeline, post, search and open a streaming connection;
anonymous ones read public pages and, when challenged, solve the proof of work as the web app's
worker would and carry on. Every request is recorded with its class, start, latency and outcome.
"""

from __future__ import annotations

import asyncio
import random
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from urllib.parse import quote

import orjson

from bench.attack.wire import Answer, Connection, request_bytes
from townsquare.shield.passes import solve

DEADLINE = 2.0  # a request counts as a success if it is answered 2xx within this
TIMEOUT = 5.0


@dataclass
class Sample:
    kind: str  # "logged-in" or "anonymous"
    label: str  # what was asked: home, post, search, stream, public
    started: float
    latency: float
    status: int  # 0: no answer
    connect: float = 0.0  # streams: seconds until the connection was accepted


@dataclass
class Recorder:
    samples: list[Sample] = field(default_factory=list)
    # How late the clients' own event loop ran (when, seconds late): a latency includes it,
    # and the load generator shares the machine's cores with the server.
    lags: list[tuple[float, float]] = field(default_factory=list)

    def add(self, kind: str, label: str, started: float, status: int, connect: float = 0.0) -> None:
        self.samples.append(
            Sample(kind, label, started, time.monotonic() - started, status, connect)
        )


@dataclass
class Instance:
    host: str
    port: int
    tokens: list[str]  # logged-in users' tokens
    account_ids: list[str]
    status_ids: list[str]
    words: list[str]


def _refused_by(answer: Answer) -> str:
    """ "@door" for a refusal from the connection layer (a ready-made answer: uvicorn dates
    every answer it writes, the connection layer's have no date), "@cap" for uvicorn's own
    503 (plain text: the worker holds its most connections), for the breakdown by label;
    "" otherwise."""
    if answer.status in (429, 503) and b"date" not in answer.headers:
        return "@door"
    if answer.status == 503 and answer.body == b"Service Unavailable":
        return "@cap"
    return ""


async def _timed(recorder: Recorder, label: str, connection: Connection, raw: bytes) -> None:
    started = time.monotonic()
    try:
        async with asyncio.timeout(TIMEOUT):
            answer = await connection.send(raw)
    except (TimeoutError, ConnectionError, OSError):
        connection.close()
        recorder.add("logged-in", label, started, 0)
        return
    recorder.add("logged-in", label + _refused_by(answer), started, answer.status)


async def home_reader(instance: Instance, recorder: Recorder, token: str, source: str) -> None:
    connection = Connection(instance.host, instance.port, source)
    raw = request_bytes(
        "GET", "/api/v1/timelines/home?limit=20", {"Authorization": f"Bearer {token}"}
    )
    while True:
        await _timed(recorder, "home", connection, raw)
        await asyncio.sleep(0.3)


async def poster(instance: Instance, recorder: Recorder, token: str, source: str) -> None:
    connection = Connection(instance.host, instance.port, source)
    headers = {
        "Authorization": f"Bearer {token}",
        "Content-Type": "application/x-www-form-urlencoded",
    }
    count = 0
    while True:
        count += 1
        body = f"status=Still+here+{count}+{random.random():.6f}".encode()
        await _timed(
            recorder,
            "post",
            connection,
            request_bytes("POST", "/api/v1/statuses", headers, body),
        )
        await asyncio.sleep(2.5)  # within the posting limit for the whole run


async def searcher(instance: Instance, recorder: Recorder, token: str, source: str) -> None:
    connection = Connection(instance.host, instance.port, source)
    while True:
        query = quote(random.choice(instance.words))
        raw = request_bytes(
            "GET",
            f"/api/v2/search?q={query}&limit=5",
            {"Authorization": f"Bearer {token}"},
        )
        await _timed(recorder, "search", connection, raw)
        await asyncio.sleep(3.0)  # within the search limit


async def streamer(instance: Instance, recorder: Recorder, token: str, source: str) -> None:
    """Opens the user stream, waits for its first bytes, holds it a while, and starts over.

    An opening without an answer is labelled with the step it was stuck at: ``~connect``
    (the server had not accepted the connection), ``~head`` (no answer to the request) or
    ``~first`` (an answer but not the stream's first bytes)."""
    while True:
        started = time.monotonic()
        writer: asyncio.StreamWriter | None = None
        status = 0
        step, connect = "~connect", 0.0
        try:
            async with asyncio.timeout(TIMEOUT):
                reader, writer = await asyncio.open_connection(
                    instance.host, instance.port, local_addr=(source, 0)
                )
                connect, step = time.monotonic() - started, "~head"
                writer.write(
                    request_bytes(
                        "GET", "/api/v1/streaming/user", {"Authorization": f"Bearer {token}"}
                    )
                )
                head = await reader.readuntil(b"\r\n\r\n")
                status = int(head[9:12])
                if status == 200:
                    step = "~first"
                    await reader.readuntil(b"\n")  # the stream's first line
                step = ""
        except (TimeoutError, ConnectionError, OSError, asyncio.IncompleteReadError):
            status = 0
        recorder.add("logged-in", "stream" + step, started, status, connect)
        if status == 200:
            await asyncio.sleep(3.0)
        if writer is not None:
            writer.transport.abort()
        await asyncio.sleep(1.0)


class AnonymousReader:
    """Reads public pages; pays the proof of work when asked, as a browser would."""

    def __init__(
        self, instance: Instance, recorder: Recorder, source: str, solver: ProcessPoolExecutor
    ) -> None:
        self.instance, self.recorder, self.solver = instance, recorder, solver
        self.connection = Connection(instance.host, instance.port, source)
        self.pass_token: str | None = None

    def _paths(self) -> list[str]:
        instance = self.instance
        return [
            "/api/v1/timelines/public?local=true&limit=20",
            f"/api/v1/accounts/{random.choice(instance.account_ids)}",
            f"/api/v1/statuses/{random.choice(instance.status_ids)}",
            f"/api/v1/accounts/{random.choice(instance.account_ids)}/statuses?limit=20",
        ]

    async def run(self) -> None:
        while True:
            for path in self._paths():
                await self.read(path)
                await asyncio.sleep(0.6)

    async def read(self, path: str) -> None:
        started = time.monotonic()
        status = 0
        door = solved = ""
        try:
            async with asyncio.timeout(TIMEOUT):
                for _ in range(3):
                    headers = {"Accept": "application/json"}
                    if self.pass_token:
                        headers["X-Townsquare-Pass"] = self.pass_token
                    answer = await self.connection.send(request_bytes("GET", path, headers))
                    status = answer.status
                    door = _refused_by(answer)
                    if status != 429 or b"challenge" not in answer.body:
                        break
                    solved = "+pow"  # this read includes solving a challenge
                    await self._earn_pass(orjson.loads(answer.body)["challenge"])
        except (TimeoutError, ConnectionError, OSError, KeyError, ValueError):
            self.connection.close()
            status = 0
        label = path.split("?")[0].split("/")[3] + door + solved
        self.recorder.add("anonymous", label, started, status)

    async def _earn_pass(self, challenge: dict[str, object]) -> None:
        value, difficulty = str(challenge["challenge"]), int(str(challenge["difficulty"]))
        loop = asyncio.get_running_loop()
        nonce = await loop.run_in_executor(self.solver, solve, value, difficulty)
        body = orjson.dumps({"challenge": value, "nonce": nonce})
        answer = await self.connection.send(
            request_bytes("POST", "/api/v1/shield/pass", {"Content-Type": "application/json"}, body)
        )
        if answer.status == 200:
            self.pass_token = orjson.loads(answer.body)["pass"]


LAG_TICK = 0.05


async def watch_lag(recorder: Recorder) -> None:
    expected = time.monotonic() + LAG_TICK
    while True:
        await asyncio.sleep(LAG_TICK)
        now = time.monotonic()
        recorder.lags.append((now, max(0.0, now - expected)))
        expected = now + LAG_TICK


async def run_legitimate(
    instance: Instance, recorder: Recorder, solver: ProcessPoolExecutor, stop: asyncio.Event
) -> None:
    """The fixed client population, until ``stop`` is set."""
    tokens = instance.tokens
    tasks = []
    # Logged-in users each come from their own address; anonymous readers each from their own
    # network, as people at home do.
    for n in range(6):
        tasks.append(home_reader(instance, recorder, tokens[n], f"127.0.1.{n + 1}"))
    for n in range(2):
        tasks.append(poster(instance, recorder, tokens[6 + n], f"127.0.1.{n + 11}"))
    for n in range(2):
        tasks.append(searcher(instance, recorder, tokens[8 + n], f"127.0.1.{n + 21}"))
    for n in range(4):
        tasks.append(streamer(instance, recorder, tokens[10 + n], f"127.0.1.{n + 31}"))
    for n in range(6):
        tasks.append(AnonymousReader(instance, recorder, f"127.0.{10 + n}.1", solver).run())
    tasks.append(watch_lag(recorder))
    running = [asyncio.create_task(task) for task in tasks]
    await stop.wait()
    for task in running:
        task.cancel()
    await asyncio.gather(*running, return_exceptions=True)
