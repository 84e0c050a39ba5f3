"""Rendered entities kept across requests, each checked against the row it was rendered from.

A worker renders the same statuses and accounts over and over: every follower's home timeline
shows the same popular posts. What does not depend on the viewer (a status's media, mentions,
tags and application; an account's whole entity) is kept here, keyed by id, together with a
*version*: values the page's own queries read from the database anyway (a status's
``edited_at``; every column an account entity is made of). An entry is used only when the
version read in this request is equal to the one it was rendered from, so an edit, a profile
change or a suspension made by any worker or node is seen by the next request everywhere,
without any message between processes. Deleted statuses are never looked up: the page's query
no longer returns them.

Entries also expire after ``MAX_AGE`` seconds, a bound for changes that might reach a rendered
part without changing its version (an application renamed, say). A posted image's description
changes only through an edit of its status, which moves ``edited_at``.

Entities kept here are shared between requests: callers may replace top-level keys of the
entities they are given (those are built per request) but must not change what is inside.
"""

from __future__ import annotations

import contextlib
import time
from collections import OrderedDict
from typing import TYPE_CHECKING, Any, Generic, TypeVar

if TYPE_CHECKING:
    from townsquare.state import AppState

Value = TypeVar("Value")

MAX_AGE = 60.0
_EXTRAS_KEY = "entity_cache"


class VersionedCache(Generic[Value]):
    """A bounded LRU of values, each with the version it was made from.

    Safe to share with reads on other threads (townsquare/db/reader_threads.py): each step is
    one operation of the ordered dict, and an entry evicted between two steps is simply gone.
    """

    def __init__(self, size: int, *, max_age: float = MAX_AGE) -> None:
        self.size = size
        self.max_age = max_age
        self._entries: OrderedDict[int, tuple[Any, float, Value]] = OrderedDict()
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: int, version: Any) -> Value | None:
        entry = self._entries.get(key)
        if entry is None or entry[0] != version or time.monotonic() - entry[1] > self.max_age:
            self.misses += 1
            return None
        with contextlib.suppress(KeyError):  # evicted by another thread since
            self._entries.move_to_end(key)
        self.hits += 1
        return entry[2]

    def put(self, key: int, version: Any, value: Value) -> None:
        if self.size <= 0:
            return
        entries = self._entries
        entries[key] = (version, time.monotonic(), value)
        with contextlib.suppress(KeyError):
            entries.move_to_end(key)
            while len(entries) > self.size:
                entries.popitem(last=False)

    def clear(self) -> None:
        self._entries.clear()


class EntityCache:
    """The worker's caches: status parts and account entities, and the JSON of both that
    timeline pages are assembled from (townsquare/statuses/rendered.py)."""

    def __init__(self, size: int) -> None:
        self.statuses: VersionedCache[Any] = VersionedCache(size)
        # Pages show fewer distinct authors than statuses.
        self.accounts: VersionedCache[dict[str, Any]] = VersionedCache(max(size // 2, 0))
        # Status templates, each checked against every column of the rows it shows.
        self.templates: VersionedCache[Any] = VersionedCache(size)
        # An account entity's bytes, checked against the entity itself (the same object while
        # the account row is unchanged: see ``accounts``).
        self.account_json: VersionedCache[bytes] = VersionedCache(max(size // 2, 0))


def entity_cache(state: AppState) -> EntityCache:
    """The app's cache, made on first use with the configured size."""
    cache = state.extras.get(_EXTRAS_KEY)
    if cache is None:
        cache = state.extras.setdefault(_EXTRAS_KEY, EntityCache(state.settings.entity_cache_size))
    assert isinstance(cache, EntityCache)
    return cache
