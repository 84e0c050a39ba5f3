"""Cheap answers to hot anonymous reads: a short-lived, per-worker cache in front of the queue.

A flood of identical anonymous GETs of a public page (the local timeline, a popular profile, a
post that went viral) should cost a dictionary lookup each, not a database query each. This
cache keeps, for ``shield_cache_ttl`` seconds, the answers anonymous clients get from a few
public read endpoints, and concurrent misses for the same URL wait for the first one to finish
instead of all reaching the database (request coalescing).

Privacy: only requests that carry no credentials at all (no token, no session cookie, no
``access_token``) are looked up or stored, and only ``200`` answers without ``Set-Cookie`` or a
``private``/``no-store`` cache directive. What is stored is therefore exactly what every
anonymous client is shown, which the privacy rules restrict to public and unlisted posts and
profiles. A post deleted or made private can still be served for up to the TTL, as a CDN in front
of the instance would.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from starlette.types import Message, Scope, Send

# Public reads whose anonymous answer is the same for everyone, and the web app's public pages
# (``/public``, ``/tags/name``, ``/@name``, ``/@name/123``).
CACHEABLE_PATHS = re.compile(
    rb"^/api/v1/(?:"
    rb"timelines/public|timelines/tag/[^/]+"
    rb"|accounts/lookup|accounts/\d+|accounts/\d+/(?:statuses|followers|following)"
    rb"|statuses/\d+|statuses/\d+/context|statuses/\d+/(?:reblogged_by|favourited_by)"
    rb"|trends(?:/[a-z]+)?|directory|custom_emojis"
    rb")/?$"
    rb"|^/(?:public|tags/[^/]+|@[^/]+|@[^/]+/\d+)/?$"
)
# Per-request headers that must not be replayed to another client.
DROPPED_HEADERS = frozenset(
    {
        b"x-ratelimit-limit",
        b"x-ratelimit-remaining",
        b"x-ratelimit-reset",
        b"access-control-allow-origin",
        b"access-control-expose-headers",
        b"access-control-allow-credentials",
        b"date",
        b"server",
    }
)
MAX_BODY = 512 * 1024
# How long a request waits for an identical one already being served before going itself. The
# wait ends as soon as that one is answered, stored or not (a refusal is not stored), so a long
# wait only matters when the application is slow, which is exactly when sending every waiting
# request on to it as well would hurt most.
COALESCE_WAIT = 5.0


@dataclass(frozen=True, slots=True)
class CachedResponse:
    status: int
    headers: list[tuple[bytes, bytes]]
    body: bytes
    expires_at: float


def cache_key(scope: Scope) -> bytes | None:
    """The key of an anonymous public read, or None when the request must not be cached."""
    if scope["method"] != "GET":
        return None
    path: bytes = scope.get("raw_path") or scope["path"].encode()
    if not CACHEABLE_PATHS.match(path):
        return None
    query: bytes = scope.get("query_string", b"")
    if b"access_token" in query:
        return None
    accept = b""
    for name, value in scope["headers"]:
        if name == b"authorization":
            return None
        if name == b"cookie" and b"townsquare_session=" in value:
            return None
        if name == b"accept":
            accept = value
    key: bytes = path + b"?" + query
    if not path.startswith(b"/api/"):
        # Web pages may answer HTML or JSON depending on what the client accepts.
        key += b"\x00" + accept
    return key


class AnonymousCache:
    def __init__(
        self,
        *,
        ttl: float,
        max_entries: int,
        extra_headers: list[tuple[bytes, bytes]],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.ttl = ttl
        self.max_entries = max_entries
        self.extra_headers = extra_headers
        self.clock = clock
        self.hits = 0
        self.misses = 0
        self._entries: OrderedDict[bytes, CachedResponse] = OrderedDict()
        self._filling: dict[bytes, asyncio.Event] = {}

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: bytes) -> CachedResponse | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        if entry.expires_at <= self.clock():
            del self._entries[key]
            return None
        return entry

    def filling(self, key: bytes) -> bool:
        """Whether an answer for ``key`` is being computed (and may soon be stored)."""
        return key in self._filling

    async def lookup(self, key: bytes) -> CachedResponse | None:
        """A fresh answer for ``key``, waiting briefly for one already being computed."""
        entry = self.get(key)
        if entry is None:
            filling = self._filling.get(key)
            if filling is not None:
                try:
                    async with asyncio.timeout(COALESCE_WAIT):
                        await filling.wait()
                except TimeoutError:
                    pass
                entry = self.get(key)
        if entry is None:
            self.misses += 1
        else:
            self.hits += 1
        return entry

    async def replay(self, entry: CachedResponse, send: Send) -> None:
        await send(
            {
                "type": "http.response.start",
                "status": entry.status,
                "headers": [*entry.headers, *self.extra_headers],
            }
        )
        await send({"type": "http.response.body", "body": entry.body})

    def recorder(self, key: bytes, send: Send) -> tuple[Send, Callable[[], None]]:
        """A ``send`` that passes the answer on and keeps it, and a callback for the end.

        While one request for ``key`` is being recorded, others for it wait (see :meth:`lookup`).
        """
        if key in self._filling:
            # Another request is already recording this key: just pass this one through.
            return send, _nothing
        event = asyncio.Event()
        self._filling[key] = event
        start: Message | None = None
        chunks: list[bytes] = []
        size = 0
        storable = True

        async def recording_send(message: Message) -> None:
            nonlocal start, size, storable
            if storable:
                if message["type"] == "http.response.start":
                    start = message
                    storable = _storable(message)
                elif message["type"] == "http.response.body":
                    body = message.get("body", b"")
                    size += len(body)
                    if size > MAX_BODY:
                        storable = False
                        chunks.clear()
                    else:
                        chunks.append(body)
                    if storable and not message.get("more_body", False) and start is not None:
                        self._store(key, start, b"".join(chunks))
            await send(message)

        def finished() -> None:
            del self._filling[key]
            event.set()

        return recording_send, finished

    def _store(self, key: bytes, start: Message, body: bytes) -> None:
        headers = [(n, v) for n, v in start.get("headers", []) if n.lower() not in DROPPED_HEADERS]
        entries = self._entries
        entries[key] = CachedResponse(start["status"], headers, body, self.clock() + self.ttl)
        entries.move_to_end(key)
        while len(entries) > self.max_entries:
            entries.popitem(last=False)


def _nothing() -> None:
    return None


def _storable(start: Message) -> bool:
    if start["status"] != 200:
        return False
    for name, value in start.get("headers", []):
        name = name.lower()
        if name == b"set-cookie":
            return False
        if name == b"cache-control" and (b"private" in value or b"no-store" in value):
            return False
        if name == b"content-type" and b"event-stream" in value:
            return False
    return True
