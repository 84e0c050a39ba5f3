"""A steady open-loop workload through HAProxy, recording what clients see.

Open loop: requests start on a fixed schedule whatever the previous ones are doing, as real
users do, so a stall shows up as requests piling up rather than as fewer requests sent.
Posts carry an ``Idempotency-Key``; a post the client saw fail is sent again with the same key
(as Mastodon apps do) until it is acknowledged, so every post ends up acknowledged exactly once.
"""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from dataclasses import dataclass, field

import httpx

from townsquare.accounts.service import NewAccount, create_account
from townsquare.db.engine import Database
from townsquare.oauth.scopes import TOP_LEVEL
from townsquare.oauth.service import issue_token

# One client-side wait for an answer; the app may hold a request through a whole failover.
REQUEST_TIMEOUT = 60.0
RETRY_PAUSE = 0.5
LONGEST_RETRY_PAUSE = 4.0


@dataclass
class Acknowledged:
    key: str
    status_id: str
    sent_at: float
    acked_at: float


@dataclass
class Outcome:
    """What the clients saw. Times are ``time.monotonic()`` values."""

    acked: list[Acknowledged] = field(default_factory=list)
    post_failures: list[tuple[float, str]] = field(default_factory=list)
    posts_sent: int = 0
    reads_ok: list[float] = field(default_factory=list)
    read_failures: list[tuple[float, str]] = field(default_factory=list)
    stream_events: int = 0
    stream_drops: list[float] = field(default_factory=list)
    unfinished_posts: int = 0


async def create_drill_accounts(database_url: str, count: int, tag: str) -> list[str]:
    """``count`` fresh accounts with a token each (written straight to the database)."""
    from townsquare.accounts.passwords import hash_password

    password_hash = hash_password(uuid.uuid4().hex)
    database = Database(database_url, pool_size=2)
    tokens = []
    try:
        async with database.write() as session:
            for index in range(count):
                account = await create_account(
                    session,
                    NewAccount(
                        username=f"drill_{tag}_{index}",
                        email=f"drill_{tag}_{index}@drill.invalid",
                        password=uuid.uuid4().hex,
                    ),
                    password_hash=password_hash,
                )
                issued = await issue_token(
                    session, app_id=None, account_id=account.id, scopes=list(TOP_LEVEL)
                )
                tokens.append(issued.access_token)
    finally:
        await database.dispose()
    return tokens


class Workload:
    def __init__(
        self,
        base_url: str,
        tokens: list[str],
        *,
        writes_per_second: float,
        reads_per_second: float,
        streams: int,
    ) -> None:
        self.base_url = base_url
        self.tokens = tokens
        self.writes_per_second = writes_per_second
        self.reads_per_second = reads_per_second
        self.streams = streams
        self.outcome = Outcome()
        self._running = True
        self._tasks: set[asyncio.Task[None]] = set()
        self._random = random.Random(7)
        self.client = httpx.AsyncClient(
            base_url=base_url,
            timeout=httpx.Timeout(REQUEST_TIMEOUT, connect=5.0),
            limits=httpx.Limits(max_connections=500, max_keepalive_connections=100),
        )

    def _headers(self, token: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {token}"}

    async def run(self, duration: float) -> None:
        """Send the workload for ``duration`` seconds, then wait for posts still in flight."""
        schedulers = [
            asyncio.create_task(self._every(1 / self.writes_per_second, self._post)),
            asyncio.create_task(self._every(1 / self.reads_per_second, self._read)),
        ]
        streams = [asyncio.create_task(self._stream(i)) for i in range(self.streams)]
        await asyncio.sleep(duration)
        self._running = False
        for task in [*schedulers, *streams]:
            task.cancel()
        await asyncio.gather(*schedulers, *streams, return_exceptions=True)

    async def finish(self, grace: float) -> None:
        """Let posts in flight (and their retries) finish, up to ``grace`` seconds."""
        pending = [task for task in self._tasks if not task.done()]
        if pending:
            _, still = await asyncio.wait(pending, timeout=grace)
            self.outcome.unfinished_posts = len(still)
            for task in still:
                task.cancel()
            await asyncio.gather(*still, return_exceptions=True)
        await self.client.aclose()

    async def _every(self, interval: float, start: object) -> None:
        next_at = time.monotonic()
        while True:
            next_at += interval
            task = asyncio.create_task(start())  # type: ignore[operator]
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
            await asyncio.sleep(max(0.0, next_at - time.monotonic()))

    async def _post(self) -> None:
        self.outcome.posts_sent += 1
        token = self._random.choice(self.tokens)
        key = uuid.uuid4().hex
        sent_at = time.monotonic()
        headers = {**self._headers(token), "Idempotency-Key": key}
        body = {"status": f"drill post {key}", "visibility": "public"}
        pause = RETRY_PAUSE
        while True:
            try:
                response = await self.client.post("/api/v1/statuses", json=body, headers=headers)
                if response.status_code == 200:
                    status_id = str(response.json()["id"])
                    self.outcome.acked.append(
                        Acknowledged(key, status_id, sent_at, time.monotonic())
                    )
                    return
                problem = f"HTTP {response.status_code} {response.text[:80]}"
            except httpx.HTTPError as error:
                problem = f"{error.__class__.__name__} {error}"[:120]
            self.outcome.post_failures.append((time.monotonic(), problem))
            # The same key again (if the first attempt was stored, this returns it), backing
            # off as Mastodon apps do.
            await asyncio.sleep(pause)
            pause = min(pause * 2, LONGEST_RETRY_PAUSE)

    async def _read(self) -> None:
        token = self._random.choice(self.tokens)
        path = self._random.choice(("/api/v1/timelines/home", "/api/v1/timelines/public"))
        try:
            response = await self.client.get(
                path, params={"limit": "20"}, headers=self._headers(token)
            )
            if response.status_code == 200:
                self.outcome.reads_ok.append(time.monotonic())
                return
            problem = f"HTTP {response.status_code} {response.text[:80]}"
        except httpx.HTTPError as error:
            problem = f"{error.__class__.__name__} {error}"[:120]
        self.outcome.read_failures.append((time.monotonic(), problem))

    async def _stream(self, index: int) -> None:
        token = self.tokens[index % len(self.tokens)]
        timeout = httpx.Timeout(REQUEST_TIMEOUT, read=None)
        while self._running:
            try:
                async with self.client.stream(
                    "GET",
                    "/api/v1/streaming/public",
                    headers=self._headers(token),
                    timeout=timeout,
                ) as response:
                    if response.status_code != 200:
                        raise httpx.HTTPError(f"HTTP {response.status_code}")
                    async for line in response.aiter_lines():
                        if line.startswith("event:"):
                            self.outcome.stream_events += 1
            except httpx.HTTPError:
                pass
            if self._running:
                self.outcome.stream_drops.append(time.monotonic())
                await asyncio.sleep(RETRY_PAUSE)
