"""Rate limits by cost class, answered with 429 and Mastodon's ``X-RateLimit-*`` headers.

Requests are classified by what they cost (logging in and signing up hash passwords; posting,
uploads and searches write or scan), and counted per access token when one is sent, else per
client address. Anonymous requests and logins are also counted per address prefix (/24, /48),
since a flood rotates through neighbouring addresses. The counts live in a
:class:`~townsquare.shield.counters.CounterStore`: in-process by default; a shared store can
replace it without touching the middleware.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import time
from dataclasses import dataclass

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from townsquare.config import Settings
from townsquare.shield.addresses import address_prefix, client_address
from townsquare.shield.counters import CounterStore, MemoryCounterStore, Verdict
from townsquare.shield.state import ShieldMetrics, rate

__all__ = ["Classifier", "CostClass", "RateLimitMiddleware", "client_address"]


@dataclass(frozen=True)
class CostClass:
    name: str
    amount: int
    period: float
    # Login and sign-up are counted per address even with a token (credential stuffing).
    per_address: bool = False

    @classmethod
    def parse(cls, name: str, text: str, *, per_address: bool = False) -> CostClass:
        amount, period = rate(text)
        return cls(name, amount, period, per_address)


class Classifier:
    def __init__(self, settings: Settings) -> None:
        self.authenticated = CostClass.parse("authenticated", settings.rate_limit_authenticated)
        self.anonymous = CostClass.parse("anonymous", settings.rate_limit_anonymous)
        self.anonymous_prefix = CostClass.parse(
            "anonymous_prefix", settings.rate_limit_anonymous_prefix
        )
        self.login = CostClass.parse("login", settings.rate_limit_login, per_address=True)
        self.login_prefix = CostClass.parse("login_prefix", settings.rate_limit_login_prefix)
        self.registration = CostClass.parse(
            "registration", settings.rate_limit_registration, per_address=True
        )
        self.posting = CostClass.parse("posting", settings.rate_limit_posting)
        self.media = CostClass.parse("media", settings.rate_limit_media)
        self.search = CostClass.parse("search", settings.rate_limit_search)

    def special(self, method: str, path: str) -> CostClass | None:
        """The expensive class a request falls in, besides the general one."""
        if method == "POST":
            if path in ("/oauth/token", "/oauth/authorize", "/auth/sign_in"):
                return self.login
            if path in ("/api/v1/accounts", "/auth/sign_up"):
                return self.registration
            if path == "/api/v1/statuses":
                return self.posting
            if path in ("/api/v1/media", "/api/v2/media"):
                return self.media
        elif path in ("/api/v2/search", "/api/v1/search", "/api/v1/accounts/search"):
            return self.search
        return None


def _bearer_key(scope: Scope) -> str | None:
    for name, value in scope.get("headers", ()):
        if name == b"authorization":
            scheme, _, token = value.decode("latin-1").partition(" ")
            if scheme.lower() == "bearer" and token.strip():
                return hashlib.sha256(token.strip().encode()).hexdigest()[:32]
    query = scope.get("query_string", b"")
    if b"access_token=" in query:
        return hashlib.sha256(query).hexdigest()[:32]
    return None


class RateLimitMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        settings: Settings,
        store: CounterStore | None = None,
        metrics: ShieldMetrics | None = None,
    ) -> None:
        self.app = app
        self.enabled = settings.rate_limits_enabled
        self.classes = Classifier(settings)
        self.store = store or MemoryCounterStore()
        self.metrics = metrics or ShieldMetrics()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not self.enabled:
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        if not (
            path.startswith("/api/") or path.startswith("/oauth/") or path.startswith("/auth/")
        ):
            await self.app(scope, receive, send)
            return
        token_key = _bearer_key(scope)
        address = client_address(scope)
        classes = self.classes
        checks = [(classes.authenticated, token_key) if token_key else (classes.anonymous, address)]
        if token_key is None:
            checks.append((classes.anonymous_prefix, address_prefix(address)))
        special = classes.special(scope["method"], path)
        if special is not None:
            who = address if special.per_address or token_key is None else token_key
            checks.append((special, who))
            if special is classes.login:
                checks.append((classes.login_prefix, address_prefix(address)))

        # The most specific per-client verdict is the one reported in the headers.
        shown: Verdict | None = None
        for cost_class, who in checks:
            verdict = await self.store.acquire(
                f"{cost_class.name}:{who}", cost_class.amount, cost_class.period
            )
            if not verdict.allowed:
                counts = self.metrics.rate_limited
                counts[cost_class.name] = counts.get(cost_class.name, 0) + 1
                await _refuse(send, verdict)
                return
            if not cost_class.name.endswith("_prefix"):
                shown = verdict
        assert shown is not None
        headers = _headers(shown)

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *headers]
            await send(message)

        await self.app(scope, receive, send_with_headers)


def _headers(verdict: Verdict) -> list[tuple[bytes, bytes]]:
    reset = dt.datetime.fromtimestamp(verdict.reset_at, dt.UTC)
    return [
        (b"x-ratelimit-limit", str(verdict.limit).encode()),
        (b"x-ratelimit-remaining", str(verdict.remaining).encode()),
        (
            b"x-ratelimit-reset",
            reset.isoformat(timespec="milliseconds").replace("+00:00", "Z").encode(),
        ),
    ]


TOO_MANY = orjson.dumps({"error": "Too many requests"})
TOO_MANY_LENGTH = str(len(TOO_MANY)).encode()


async def _refuse(send: Send, verdict: Verdict) -> None:
    body = TOO_MANY
    await send(
        {
            "type": "http.response.start",
            "status": 429,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", TOO_MANY_LENGTH),
                (b"retry-after", str(verdict.retry_after(time.time())).encode()),
                *_headers(verdict),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
