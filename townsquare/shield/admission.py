"""Admission control: the outermost layer, deciding in microseconds who is served, and when.

Every request is put in a priority class before it costs any work:

0. *trusted* — a bearer token or session the authentication layer recently found valid
   (verified accounts first within the class);
1. *pass* — an anonymous request carrying a proof-of-work pass (more effort, sooner), or a token
   not yet seen by this worker (it still has to reach the authentication layer once);
2. *anonymous* — everything else.

Requests then wait in :class:`~townsquare.shield.concurrency.AdmissionQueue` for one of the
worker's adaptive number of slots, and are shed with 503 when their class's deadline passes.
Under attack, anonymous requests without a pass are refused at once with a challenge.
"""

from __future__ import annotations

import datetime as dt
import time

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from townsquare.shield import login_names
from townsquare.shield.addresses import (
    ForwardedFor,
    address_prefix,
    client_address,
    history_key,
)
from townsquare.shield.bodies import (
    PREBUFFER_LIMIT,
    BufferedBody,
    TimedReceive,
    declared_length,
    read_small_body,
)
from townsquare.shield.cache import cache_key
from townsquare.shield.concurrency import Shed
from townsquare.shield.connections import remember_pass, remember_token
from townsquare.shield.counters import Verdict
from townsquare.shield.door import (
    CHALLENGE_MESSAGE,
    CORS_HEADERS,
    OPEN_PREFIXES,
    challenge_answer,
    challenge_headers,
    puzzle_difficulty,
)
from townsquare.shield.standing import (
    Credentials,
    Standing,
    history,
    streaming_secret,
    token_digest,
    tokens,
    usage,
)
from townsquare.shield.state import ShieldState

TRUSTED, PASS, ANONYMOUS = 0, 1, 2

# Never queued: probes must tell the truth about the worker, and the way to earn a pass must
# stay open while everything else is shed.
BYPASS_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})
BYPASS_PREFIXES = ("/api/v1/shield/", "/shield/")
STREAMING_PREFIX = "/api/v1/streaming"
STREAMING_HEALTH = "/api/v1/streaming/health"

UPLOAD_PREFIXES = ("/api/v1/media", "/api/v2/media")
BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
RETRY_AFTER = (b"1", b"2", b"5")
BUSY = orjson.dumps({"error": "The server is too busy right now; try again shortly"})
TOO_MANY_STREAMS = orjson.dumps({"error": "Too many streaming connections opened; try again later"})
INVALID_TOKEN = orjson.dumps({"error": "The access token is invalid"})


# A token's usage (see TokenUsage: about 7 times its requests per second on this worker) is
# counted in steps of this size: within the trusted class, lighter users are served first.
USAGE_STEP = 8.0
USAGE_STEPS = 16
# Beyond this usage (some 6 requests a second on one worker, more than a person makes) a valid
# token is served after anonymous requests with a pass: an attacker's own accounts, lent to a
# flood, do not take the place of people in good standing.
HEAVY_USAGE = 40.0
HEAVY_RANK = 1 << 20
# Searches scan; other requests outside the trusted class go before them.
EXPENSIVE_PATHS = frozenset({"/api/v2/search", "/api/v1/search", "/api/v1/accounts/search"})
EXPENSIVE_RANK = 1 << 10
# Ranked after cheaper requests of their class: searches, and sign-ins (a password hash each).
SIGN_IN_PATHS = frozenset({"/oauth/token", "/auth/sign_in"})
COSTLY_PATHS = EXPENSIVE_PATHS | SIGN_IN_PATHS
# Anonymous requests from addresses answered lately at a person's pace go before those of
# addresses this worker does not know (see AddressHistory).
KNOWN_RANK = -1
# And with a pass, before every pass of an address this worker does not know (see pass_rank).
KNOWN_PASS_RANK = 1 << 16
UNSEEN_STREAM_RANK = 1 << 19


def pass_rank(effort: int, *, known: bool) -> int:
    """The rank of a request with a pass of this effort (bits): more effort, sooner; and a
    reader this worker knows (see AddressHistory) before every client it does not know,
    whatever their effort. Its puzzle was made ``KNOWN_DISCOUNT`` bits smaller (see
    puzzle_difficulty), and the pass it holds may date from before the attack's difficulty
    rose: ranked by its effort alone, a person's pass went after every pass a flood's native
    solvers earned at full price, and the people's reads were the ones shed."""
    return -effort - (KNOWN_PASS_RANK if known else 0)


def trusted_place(standing: Standing, usage: float) -> tuple[int, int]:
    """The class and rank of a request with a valid token of this standing and usage."""
    step = min(USAGE_STEPS, int(usage // USAGE_STEP))
    if usage > HEAVY_USAGE:
        return ANONYMOUS, HEAVY_RANK + step
    return TRUSTED, 2 * step + (0 if standing == Standing.VERIFIED else 1)


class AdmissionMiddleware:
    def __init__(self, app: ASGIApp, shield: ShieldState) -> None:
        self.app = app
        self.shield = shield
        self.enabled = shield.settings.shield_enabled
        self.forwarded_for = ForwardedFor(shield.settings.shield_trusted_proxies)
        self.max_body = max(PREBUFFER_LIMIT, shield.settings.server_max_body_bytes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.forwarded_for and scope["type"] in ("http", "websocket"):
            # Every layer below (limits, streaming, logs) sees the real client from here on.
            self.forwarded_for.apply(scope)
        if not self.enabled or scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        if path.startswith(STREAMING_PREFIX):
            # Long-lived: never queued, but each opening costs an authentication, so
            # openings are counted per address and per token before anything else.
            if path != STREAMING_HEALTH:
                verdict = await self._streaming_verdict(scope)
                if verdict is not None:
                    self.shield.metrics.streaming_refused += 1
                    await _too_many(scope, receive, send, verdict)
                    return
                secret = streaming_secret(scope)
                standing = None if secret is None else tokens.get(token_digest(secret))
                if standing == Standing.INVALID:
                    # Found invalid before: refused without another database lookup.
                    self.shield.metrics.streaming_refused += 1
                    await _deny(scope, receive, send, 401, INVALID_TOKEN, [])
                    return
                if secret is not None and standing is not None and standing >= Standing.GOOD:
                    remember_token(token_digest(secret), client_address(scope))
                await self._open_stream(scope, receive, send, secret, standing)
                return
            await self.app(scope, receive, send)
            return
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if (
            path in BYPASS_PATHS
            or path.startswith(BYPASS_PREFIXES)
            or scope["method"] == "OPTIONS"  # CORS preflights: answered at once, below
        ):
            await self.app(scope, receive, send)
            return

        cache = self.shield.cache
        key = cache_key(scope) if cache is not None else None
        if cache is None or key is None:
            await self._admit(scope, receive, send)
            return
        entry = await cache.lookup(key)
        if entry is not None:
            await cache.replay(entry, send)
            return
        recording_send, finished = cache.recorder(key, send)
        try:
            await self._admit(scope, receive, recording_send)
        finally:
            finished()

    async def _admit(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope["path"]
        shield = self.shield
        credentials = Credentials(scope)
        priority, rank = ANONYMOUS, 0
        standing = credentials.standing() if credentials.secret is not None else None
        if standing is not None and standing >= Standing.GOOD:
            digest = credentials.digest()
            priority, rank = trusted_place(standing, usage.add(digest, time.monotonic()))
            # The connection layer serves this address first while the worker lags.
            remember_token(digest, client_address(scope))
        elif standing == Standing.UNKNOWN and await self._may_try_token(scope):
            priority = PASS
        else:
            address = client_address(scope)
            prefix = address_prefix(address)
            known_key = history_key(address)
            if history.seen(known_key, time.monotonic()):
                rank = KNOWN_RANK
            send = _noting_answers(send, known_key)
            held = None
            if credentials.pass_token is not None:
                held = shield.issuer.check(credentials.pass_token, prefix)
            if held is not None:
                count, period = shield.pass_rate
                if not (
                    await shield.counters.acquire(f"pass:{held.pass_id}", count, period)
                ).allowed:
                    shield.metrics.pass_limited += 1
                    shield.mode.refused()
                    await self._challenge(
                        scope, send, prefix, "This pass has been used up", rank == KNOWN_RANK
                    )
                    return
                priority, rank = PASS, pass_rank(held.effort, known=rank == KNOWN_RANK)
                remember_pass(client_address(scope))
            elif shield.mode.active and not path.startswith(OPEN_PREFIXES):
                shield.metrics.challenged += 1
                shield.mode.refused()
                await self._challenge(scope, send, prefix, CHALLENGE_MESSAGE, rank == KNOWN_RANK)
                return

        timed: TimedReceive | None = None
        if scope["method"] in BODY_METHODS:
            length = declared_length(scope)
            # Bodies other than media uploads are small (the connection layer caps them):
            # read them whole before queueing, so a slow sender never holds a slot.
            small = PREBUFFER_LIMIT if path.startswith(UPLOAD_PREFIXES) else self.max_body
            if length is not None and length <= small:
                if length > 0:
                    replay = await read_small_body(receive, small)
                    if replay is None:
                        return  # the client left before sending its request
                    if path == "/oauth/token" and await self._refused_login(scope, replay, send):
                        return
                    receive = replay
            else:
                receive = timed = TimedReceive(receive)

        if priority != TRUSTED and path in COSTLY_PATHS:
            # Without a token in good standing, a search or a sign-in waits behind cheaper
            # requests of its class: a flood of them cannot keep readers of public pages
            # waiting.
            rank += EXPENSIVE_RANK
        lane = None
        if path in EXPENSIVE_PATHS:
            # And only a few searches run at once, so however many wait, slots stay free
            # for everything else.
            lane = shield.expensive_lane
        elif priority != TRUSTED and path in SIGN_IN_PATHS:
            # Likewise sign-ins: only as many as can compute their password hash soon hold a
            # slot, so a stuffing run waits here instead of in slots readers need.
            lane = shield.sign_in_lane
        if lane is not None:
            try:
                await lane.acquire(priority, rank)
            except Shed:
                shield.metrics.shed[priority] += 1
                shield.mode.refused()
                await self._shed(send, priority)
                return
        try:
            await self._serve(scope, receive, send, priority, rank, timed)
        finally:
            if lane is not None:
                lane.release()
        if standing == Standing.UNKNOWN and credentials.standing() >= Standing.GOOD:
            # A token this worker had not seen was just found valid.
            remember_token(credentials.digest(), client_address(scope))

    async def _serve(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        priority: int,
        rank: int,
        timed: TimedReceive | None,
    ) -> None:
        """Wait for a slot in ``priority`` class at ``rank``, then serve the request."""
        shield = self.shield
        queue = shield.queue
        try:
            waited = await queue.acquire(priority, rank)
        except Shed:
            shield.metrics.shed[priority] += 1
            shield.mode.refused()
            await self._shed(send, priority)
            return
        shield.metrics.admitted[priority] += 1
        shield.metrics.queued_seconds[priority] += waited
        shield.mode.served(waited)
        started = time.monotonic()
        try:
            await self.app(scope, receive, send)
        finally:
            elapsed = time.monotonic() - started
            queue.record(elapsed - timed.waited if timed is not None else elapsed)
            queue.release()

    async def _open_stream(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        secret: str | None,
        standing: Standing | None,
    ) -> None:
        """Open a stream, holding a slot only until it is accepted or refused.

        A stream lives for hours and never holds a slot, but opening one costs an
        authentication and database reads like any request: the opening waits for a slot in
        its token's class, so a handshake flood queues behind signed-in people's requests
        instead of taking the database connections they need, and is shed when it waited
        too long."""
        if standing is not None and standing >= Standing.GOOD:
            assert secret is not None
            priority, rank = trusted_place(
                standing, usage.add(token_digest(secret), time.monotonic())
            )
        elif standing == Standing.UNKNOWN:
            # Someone's first stream on this worker, or a made-up token: after every request
            # with a token in good standing, before anonymous ones with a pass (the connection
            # layer limits how many unseen tokens an address and a network may bring).
            priority, rank = PASS, -UNSEEN_STREAM_RANK
        else:
            priority, rank = ANONYMOUS, 0
        shield = self.shield
        queue = shield.queue
        # Openings with a token not validated yet also take one of a few places of their own
        # first: a flood of made-up tokens never holds more than those of the worker's slots.
        lane = shield.unseen_lane if standing == Standing.UNKNOWN else None
        try:
            if lane is not None:
                await lane.acquire(priority, rank)
            try:
                waited = await queue.acquire(priority, rank)
            except BaseException:
                if lane is not None:
                    lane.release()
                raise
        except Shed:
            # Not counted by under-attack mode: puzzles are for anonymous requests, and
            # would not slow a handshake flood down, only the readers of public pages.
            shield.metrics.shed[priority] += 1
            retry = [(b"retry-after", RETRY_AFTER[priority])]
            await _deny(scope, receive, send, 503, BUSY, retry)
            return
        shield.metrics.admitted[priority] += 1
        shield.metrics.queued_seconds[priority] += waited
        started = time.monotonic()
        holding = True

        def release() -> None:
            nonlocal holding
            if holding:
                holding = False
                queue.record(time.monotonic() - started)
                queue.release()
                if lane is not None:
                    lane.release()

        async def opened_send(message: Message) -> None:
            # The first answer (accepted, refused or the stream's head) ends the opening.
            release()
            await send(message)

        try:
            await self.app(scope, receive, opened_send)
        finally:
            release()

    async def _refused_login(self, scope: Scope, body: BufferedBody, send: Send) -> bool:
        """Answer a password grant for a login name refused moments ago with a ready-made
        429, before the app asks the database who the name belongs to."""
        content_type = b""
        for name, value in scope["headers"]:
            if name == b"content-type":
                content_type = value.lower()
        headers = login_names.refusal(self.shield.limited_logins, body.body, content_type)
        if headers is None:
            return False
        limited = self.shield.metrics.rate_limited
        limited["login_account"] = limited.get("login_account", 0) + 1
        await send(
            {"type": "http.response.start", "status": 429, "headers": [*headers, *CORS_HEADERS]}
        )
        await send({"type": "http.response.body", "body": login_names.TOO_MANY_LOGINS})
        return True

    async def _streaming_verdict(self, scope: Scope) -> Verdict | None:
        """Why a streaming connection may not be opened now (its verdict), or None."""
        counters = self.shield.counters
        count, period = self.shield.streaming_address_rate
        verdict = await counters.acquire("stream:" + client_address(scope), count, period)
        if not verdict.allowed:
            return verdict
        count, period = self.shield.streaming_rate
        secret = streaming_secret(scope)
        if secret is not None:
            key = "stream_token:" + token_digest(secret)[:32]
            verdict = await counters.acquire(key, count, period)
            if not verdict.allowed:
                return verdict
        return None

    async def _may_try_token(self, scope: Scope) -> bool:
        """An unseen token gets a try, but during an attack only so many per network."""
        if not self.shield.mode.active:
            return True
        count, period = self.shield.unknown_token_rate
        key = "token:" + address_prefix(client_address(scope))
        return (await self.shield.counters.acquire(key, count, period)).allowed

    async def _shed(self, send: Send, priority: int) -> None:
        await send(
            {
                "type": "http.response.start",
                "status": 503,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(BUSY)).encode()),
                    (b"retry-after", RETRY_AFTER[priority]),
                    *CORS_HEADERS,
                ],
            }
        )
        await send({"type": "http.response.body", "body": BUSY})

    async def _challenge(
        self, scope: Scope, send: Send, prefix: str, message: str, known: bool
    ) -> None:
        shield = self.shield
        difficulty = puzzle_difficulty(shield.difficulty, known)
        content_type, body = challenge_answer(
            shield.issuer, prefix, difficulty, _wants_page(scope), message
        )
        await send(
            {
                "type": "http.response.start",
                "status": 429,
                "headers": challenge_headers(content_type, body),
            }
        )
        await send({"type": "http.response.body", "body": body})


def _noting_answers(send: Send, key: str) -> Send:
    """``send``, telling the address history when the request was answered (not shed or
    refused with a challenge)."""

    async def noting(message: Message) -> None:
        if message["type"] == "http.response.start":
            status = message["status"]
            if status < 500 and status != 429:
                history.answered(key, time.monotonic())
        await send(message)

    return noting


def _wants_page(scope: Scope) -> bool:
    if scope["method"] != "GET" or scope["path"].startswith("/api/"):
        return False
    for name, value in scope["headers"]:
        if name == b"accept":
            return b"text/html" in value
    return False


async def _too_many(scope: Scope, receive: Receive, send: Send, verdict: Verdict) -> None:
    """429 with ``Retry-After`` and the limit's headers."""
    reset = dt.datetime.fromtimestamp(verdict.reset_at, dt.UTC).isoformat(timespec="seconds")
    headers = [
        (b"retry-after", str(verdict.retry_after(time.time())).encode()),
        (b"x-ratelimit-limit", str(verdict.limit).encode()),
        (b"x-ratelimit-remaining", b"0"),
        (b"x-ratelimit-reset", reset.replace("+00:00", "Z").encode()),
    ]
    await _deny(scope, receive, send, 429, TOO_MANY_STREAMS, headers)


async def _deny(
    scope: Scope,
    receive: Receive,
    send: Send,
    status: int,
    body: bytes,
    extra_headers: list[tuple[bytes, bytes]],
) -> None:
    """Refuse a streaming request; for a WebSocket, as an HTTP answer to its handshake if the
    server can send one, else a close (1013 "try again later" or 1008 "policy violation")."""
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        *extra_headers,
        *CORS_HEADERS,
    ]
    if scope["type"] == "http":
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})
        return
    message = await receive()
    if message["type"] != "websocket.connect":
        return
    if "websocket.http.response" in scope.get("extensions", {}):
        await send({"type": "websocket.http.response.start", "status": status, "headers": headers})
        await send({"type": "websocket.http.response.body", "body": body})
    else:
        code = 1013 if status == 429 else 1008
        await send({"type": "websocket.close", "code": code, "reason": "Refused"})
