"""Challenges handed out at the door: an anonymous flood answered before it is parsed.

While under-attack mode is on, an anonymous request without a pass gets a proof-of-work
challenge, whatever it asks. Answered by admission control, that costs the request its parse
by uvicorn, its ASGI scope and task, and the middleware stack around admission; at thousands
of requests a second that is more of the worker's loop than the people it serves get. So the
connection layer shows each new request head on an open connection to :class:`Door` first,
and writes the answer it gets back as it is, without a parser ever reading the request.

Only what is certain to be challenged is answered here: a complete ``GET`` head with no body,
no credential of any kind (a token, ``access_token``, a session or a pass), for a path that is
neither open without a pass nor the shield's own, and not in the cache of hot reads (readers
of a cached page never solve a puzzle). Anything else goes on to the parser and the app,
which decide as before.
"""

from __future__ import annotations

import time
from pathlib import Path

import orjson

from townsquare.shield.addresses import address_prefix, history_key
from townsquare.shield.cache import CACHEABLE_PATHS, AnonymousCache
from townsquare.shield.mode import AttackMode
from townsquare.shield.passes import PassIssuer, challenge_entity
from townsquare.shield.standing import history

# Browsers asking for a page get one that solves the challenge and reloads by itself.
CHALLENGE_PAGE = (Path(__file__).parent / "static" / "challenge.html").read_text()
# These answers leave before the CORS middleware sees them, yet browser clients on other
# origins must be able to read them to back off or solve the challenge.
CORS_HEADERS = [
    (b"access-control-allow-origin", b"*"),
    (b"access-control-expose-headers", b"Retry-After"),
]
CHALLENGE_MESSAGE = "Prove you are not a flood to continue"
# Bits of proof of work spared to anonymous clients with a good recent history (16 times less
# work), and the fewest that discount leaves.
KNOWN_DISCOUNT = 4
MIN_DIFFICULTY = 8

# Reachable without a pass under attack: an app signing a user in cannot solve puzzles (these
# are cheap and limited per address), and static files cost nothing.
OPEN_PREFIXES = (
    "/oauth/token",
    "/oauth/revoke",
    "/api/v1/apps",
    "/api/v1/instance",
    "/api/v2/instance",
    "/.well-known/",
    "/nodeinfo",
    "/static/",
    "/favicon.ico",
)
# Never challenged: probes, the way to earn a pass, and streams (judged by their own rules).
NEVER_CHALLENGED = (
    "/healthz",
    "/readyz",
    "/metrics",
    "/api/v1/shield/",
    "/shield/",
    "/api/v1/streaming",
)
# Anything in a head that makes it more than a plain anonymous read: left to the app.
CREDENTIALS = (
    b"\r\nauthorization:",
    b"\r\nx-townsquare-pass:",
    b"townsquare_session=",
    b"townsquare_pass=",
    b"access_token",
    b"\r\nupgrade:",
    b"\r\ncontent-length:",
    b"\r\ntransfer-encoding:",
    b"\r\nx-forwarded-for:",
)


def puzzle_difficulty(difficulty: int, known: bool) -> int:
    """The difficulty of the puzzle for a client: ``KNOWN_DISCOUNT`` bits less for one this
    worker answered lately at a person's pace (see AddressHistory), whose reader must not
    wait seconds for a puzzle in the middle of a page; the discount never takes it below
    ``MIN_DIFFICULTY``."""
    if not known:
        return difficulty
    return max(min(difficulty, MIN_DIFFICULTY), difficulty - KNOWN_DISCOUNT)


def challenge_answer(
    issuer: PassIssuer, prefix: str, difficulty: int, wants_page: bool, message: str
) -> tuple[bytes, bytes]:
    """The content type and body of a challenge for a client of the network ``prefix``."""
    entity = challenge_entity(issuer.challenge(prefix, difficulty))
    if wants_page:
        # The challenge is made of URL-safe characters only: safe inside a script.
        body = CHALLENGE_PAGE.replace("__CHALLENGE__", orjson.dumps(entity).decode()).encode()
        return b"text/html; charset=utf-8", body
    return b"application/json", orjson.dumps({"error": message, "challenge": entity})


def challenge_headers(content_type: bytes, body: bytes) -> list[tuple[bytes, bytes]]:
    return [
        (b"content-type", content_type),
        (b"content-length", str(len(body)).encode()),
        (b"retry-after", b"1"),
        (b"cache-control", b"no-store"),
        *CORS_HEADERS,
    ]


class Door:
    """What the connection layer asks about each new request head: a ready challenge to
    write (and whether to close the connection after it), or None to parse the request."""

    def __init__(
        self,
        mode: AttackMode,
        issuer: PassIssuer,
        cache: AnonymousCache | None,
        difficulty: int,
    ) -> None:
        self.mode = mode
        self.issuer = issuer
        self.cache = cache
        self.base_difficulty = difficulty
        self.challenged = 0

    def answer(self, head: bytes, address: str) -> tuple[bytes, bool] | None:
        """The answer to ``head`` (one whole request head, nothing after it) from
        ``address``, and whether the connection closes after it; None: not for the door."""
        if not head.startswith(b"GET ") or not self.mode.active:
            return None
        line_end = head.find(b"\r\n")
        parts = head[4:line_end].split(b" ")
        if len(parts) != 2 or parts[1] not in (b"HTTP/1.1", b"HTTP/1.0"):
            return None
        target, version = parts
        if not target.startswith(b"/") or b"%" in target:
            return None
        lowered = head.lower()
        if any(marker in lowered for marker in CREDENTIALS):
            return None
        raw_path, _, query = target.partition(b"?")
        path = raw_path.decode("latin-1")
        if path.startswith(OPEN_PREFIXES) or path.startswith(NEVER_CHALLENGED):
            return None
        accept = _header(head, b"accept", lowered)
        if self.cache is not None and CACHEABLE_PATHS.match(raw_path):
            key = raw_path + b"?" + query
            if not raw_path.startswith(b"/api/"):
                key += b"\x00" + (accept or b"")
            if self.cache.get(key) is not None or self.cache.filling(key):
                return None  # served from the cache, as it would be without the door
        closing = version == b"HTTP/1.0" or b"close" in (_header(lowered, b"connection") or b"")
        wants_page = not path.startswith("/api/") and accept is not None and b"text/html" in accept
        # Counted like any anonymous request of the address: a flood loses its place.
        known = history.seen(history_key(address), time.monotonic())
        difficulty = puzzle_difficulty(self.base_difficulty + self.mode.intensity, known)
        content_type, body = challenge_answer(
            self.issuer, address_prefix(address), difficulty, wants_page, CHALLENGE_MESSAGE
        )
        self.challenged += 1
        self.mode.refused()
        headers = challenge_headers(content_type, body)
        if closing:
            headers.append((b"connection", b"close"))
        lines = [b"HTTP/1.1 429 Too Many Requests"]
        lines.extend(name + b": " + value for name, value in headers)
        return b"\r\n".join(lines) + b"\r\n\r\n" + body, closing


def _header(head: bytes, name: bytes, lowered: bytes | None = None) -> bytes | None:
    """The value of header ``name`` (lower case) in ``head``, found in ``lowered`` (the head in
    lower case: ``head`` itself when not given), or None."""
    marker = b"\r\n" + name + b":"
    start = (lowered if lowered is not None else head).find(marker)
    if start == -1:
        return None
    start += len(marker)
    end = head.find(b"\r\n", start)
    return head[start:end].strip()
