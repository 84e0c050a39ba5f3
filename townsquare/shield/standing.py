"""What the shield remembers about access tokens, so it can trust them without a database hit.

The authentication layer validates a token against the database; it then tells the shield
(``remember``), which keeps the token's digest in a bounded in-process LRU. At the front door a
request whose token digest is remembered as good is served first; a token known to be invalid
is treated like no token at all; a token never seen yet is let through at a lower priority, so
the first request after a restart still reaches the authentication layer.
"""

from __future__ import annotations

import enum
import hashlib
from collections import OrderedDict

from starlette.types import Scope

SESSION_COOKIE = b"townsquare_session"
PASS_COOKIE = b"townsquare_pass"
PASS_HEADER = b"x-townsquare-pass"


class Standing(enum.IntEnum):
    UNKNOWN = 0
    INVALID = 1
    GOOD = 2
    VERIFIED = 3


class TokenStanding:
    def __init__(self, max_entries: int = 200_000) -> None:
        self._entries: OrderedDict[str, Standing] = OrderedDict()
        self._max_entries = max_entries

    def __len__(self) -> int:
        return len(self._entries)

    def set(self, token_digest: str, standing: Standing) -> None:
        self._entries[token_digest] = standing
        self._entries.move_to_end(token_digest)
        if len(self._entries) > self._max_entries:
            self._entries.popitem(last=False)

    def get(self, token_digest: str) -> Standing:
        standing = self._entries.get(token_digest)
        if standing is None:
            return Standing.UNKNOWN
        if standing >= Standing.GOOD:
            self._entries.move_to_end(token_digest)
        return standing

    def forget(self, token_digest: str) -> None:
        self._entries.pop(token_digest, None)

    def clear(self) -> None:
        self._entries.clear()


class TokenUsage:
    """How busy each token has been lately on this worker: its requests, counted with a weight
    that halves every ``half_life`` seconds (about 7 times its rate per second when steady)."""

    def __init__(self, half_life: float = 5.0, max_entries: int = 100_000) -> None:
        self.half_life = half_life
        self.max_entries = max_entries
        self._entries: dict[str, tuple[float, float]] = {}  # digest -> (usage, when)

    def add(self, token_digest: str, now: float) -> float:
        """Count one request of the token at ``now``: its usage, this request included."""
        entry = self._entries.get(token_digest)
        if entry is None:
            if len(self._entries) >= self.max_entries:
                self._entries.clear()  # a flood of tokens: everyone starts afresh
            usage = 1.0
        else:
            usage = entry[0] * 0.5 ** (max(0.0, now - entry[1]) / self.half_life) + 1.0
        self._entries[token_digest] = (usage, now)
        return usage

    def weight(self, token_digest: str) -> float:
        """The usage counted at the token's last request (0 if none), not decayed since."""
        entry = self._entries.get(token_digest)
        return 0.0 if entry is None else entry[0]

    def clear(self) -> None:
        self._entries.clear()


class AddressHistory:
    """Anonymous clients with a good recent history on this worker, and how busy each is.

    An address earns its place with ``min_answers`` requests answered (not refused, not shed)
    over at least ``min_age`` seconds, and keeps it while it is answered again within
    ``lifetime`` seconds. Every anonymous request of an address is counted as
    :class:`TokenUsage` counts a token's (a weight that halves every ``half_life`` seconds);
    beyond ``heavy`` (some 6 requests a second, sustained: more than a person makes) it loses
    its place and starts over. Addresses still earning theirs are kept apart from those that
    have, so a flood of new addresses, filling and clearing its own table, never pushes out
    the people already known; those are evicted oldest-answered first when their table is full.
    """

    def __init__(
        self,
        *,
        min_answers: int = 3,
        min_age: float = 5.0,
        lifetime: float = 600.0,
        half_life: float = 5.0,
        heavy: float = 40.0,
        max_entries: int = 100_000,
        max_known: int = 20_000,
    ) -> None:
        self.min_answers = min_answers
        self.min_age = min_age
        self.lifetime = lifetime
        self.heavy = heavy
        self.max_entries = max_entries
        self.max_known = max_known
        self._usage = TokenUsage(half_life, max_entries)
        self._earning: dict[str, tuple[float, int]] = {}  # key -> (first answered, answers)
        self._known: dict[str, float] = {}  # key -> last answered, oldest first

    def seen(self, key: str, now: float) -> bool:
        """Count one request of ``key`` at ``now``: whether it has a good recent history."""
        if self._usage.add(key, now) > self.heavy:
            self._known.pop(key, None)
            self._earning.pop(key, None)
            return False
        answered = self._known.get(key)
        return answered is not None and now - answered < self.lifetime

    def known(self, key: str, now: float) -> bool:
        """Whether ``key`` has a good recent history, without counting a request."""
        answered = self._known.get(key)
        return (
            answered is not None
            and now - answered < self.lifetime
            and self._usage.weight(key) <= self.heavy
        )

    def answered(self, key: str, now: float) -> None:
        """A request of ``key`` was answered at ``now``."""
        if self._usage.weight(key) > self.heavy:
            return
        known = self._known
        if key in known:
            del known[key]  # back at the newest end
            known[key] = now
            return
        earning = self._earning.get(key)
        if earning is None or now - earning[0] >= self.lifetime:
            if earning is None and len(self._earning) >= self.max_entries:
                self._earning.clear()
            first, answers = now, 1
        else:
            first, answers = earning[0], earning[1] + 1
        if answers < self.min_answers or now - first < self.min_age:
            self._earning[key] = (first, answers)
            return
        self._earning.pop(key, None)
        known[key] = now
        if len(known) > self.max_known:
            del known[next(iter(known))]

    def clear(self) -> None:
        self._usage.clear()
        self._earning.clear()
        self._known.clear()


# One per worker process: tokens validated by any request of this worker.
tokens = TokenStanding()
usage = TokenUsage()
# Anonymous clients this worker has answered lately.
history = AddressHistory()


def remember(token_digest: str, verified: bool) -> None:
    """A token (digest as ``townsquare.oauth.tokens.digest`` gives it) was found valid."""
    tokens.set(token_digest, Standing.VERIFIED if verified else Standing.GOOD)


def reject(token_digest: str) -> None:
    """A token was found invalid, revoked or expired, or its account suspended."""
    tokens.set(token_digest, Standing.INVALID)


def forget(token_digest: str) -> None:
    """A token was revoked: trust it no more until it is validated again."""
    tokens.forget(token_digest)


def token_digest(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


def _cookie(header: bytes, name: bytes) -> bytes | None:
    for part in header.split(b";"):
        key, eq, value = part.strip().partition(b"=")
        if eq and key == name:
            return value
    return None


class Credentials:
    """What a request carries that the shield cares about, read from its headers in one pass."""

    __slots__ = ("pass_token", "secret")

    def __init__(self, scope: Scope) -> None:
        self.secret: str | None = None  # bearer token or session cookie
        self.pass_token: str | None = None
        cookie_header = b""
        for name, value in scope["headers"]:
            if name == b"authorization":
                scheme, _, token = value.partition(b" ")
                token = token.strip()
                if scheme.lower() == b"bearer" and token:
                    self.secret = token.decode("latin-1")
            elif name == PASS_HEADER:
                self.pass_token = value.decode("latin-1")
            elif name == b"cookie":
                cookie_header = value
        if cookie_header:
            if self.secret is None:
                session = _cookie(cookie_header, SESSION_COOKIE)
                if session:
                    self.secret = session.decode("latin-1")
            if self.pass_token is None:
                passed = _cookie(cookie_header, PASS_COOKIE)
                if passed:
                    self.pass_token = passed.decode("latin-1")
        if self.secret is None:
            query: bytes = scope.get("query_string", b"")
            if b"access_token=" in query:
                for pair in query.split(b"&"):
                    key, _, value = pair.partition(b"=")
                    if key == b"access_token" and value:
                        self.secret = value.decode("latin-1")
                        break

    def digest(self) -> str:
        return token_digest(self.secret or "")

    def standing(self) -> Standing:
        if self.secret is None:
            return Standing.INVALID
        return tokens.get(token_digest(self.secret))


def websocket_protocol_token(scope: Scope) -> str | None:
    """The token a WebSocket client sends as ``Sec-WebSocket-Protocol`` (as Mastodon allows)."""
    for name, value in scope["headers"]:
        if name == b"sec-websocket-protocol":
            token = value.split(b",")[0].strip()
            return token.decode("latin-1") if token else None
    return None


def streaming_secret(scope: Scope) -> str | None:
    """The token or session a streaming request carries, wherever the client put it."""
    secret = Credentials(scope).secret
    if secret is None and scope["type"] == "websocket":
        secret = websocket_protocol_token(scope)
    return secret
