"""One open stream (a WebSocket or an event-stream response), its subscriptions and its mailbox.

Delivery never waits for a client: it drops messages into a bounded mailbox, and the
connection's own task writes them out. A client that cannot keep up fills its mailbox and is
disconnected, so one slow reader costs a fixed amount of memory and nobody else any time.
"""

from __future__ import annotations

import asyncio
import itertools
from collections import deque
from dataclasses import dataclass, field
from typing import TypeVar

Key = TypeVar("Key", int, str)


@dataclass(frozen=True)
class Outgoing:
    """A message on its way to a client: ``payload`` is already a string (JSON or an id)."""

    stream: tuple[str, ...]
    event: str
    payload: str


class ConnectionClosed(Exception):
    """The connection was closed by the server (shutdown, overflow, revoked token)."""


class Mailbox:
    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.overflowed = False
        self.closed = False
        self._items: deque[Outgoing] = deque()
        self._ready = asyncio.Event()

    def offer(self, item: Outgoing) -> bool:
        if self.closed:
            return False
        if len(self._items) >= self.limit:
            self.overflowed = True
            self.close()
            return False
        self._items.append(item)
        self._ready.set()
        return True

    def close(self) -> None:
        self.closed = True
        self._items.clear()
        self._ready.set()

    async def take(self, quiet_after: float) -> list[Outgoing]:
        """Everything waiting, or ``[]`` after ``quiet_after`` seconds of quiet (to heartbeat)."""
        if not self._items and not self.closed:
            self._ready.clear()
            try:
                await asyncio.wait_for(self._ready.wait(), quiet_after)
            except TimeoutError:
                return []
        if self.closed:
            raise ConnectionClosed
        items = list(self._items)
        self._items.clear()
        return items


_connection_numbers = itertools.count(1)


@dataclass(eq=False)
class StreamConnection:
    account_id: int | None
    scopes: frozenset[str]
    address: str
    queue_limit: int
    token_id: int | None = None
    number: int = field(default_factory=lambda: next(_connection_numbers))
    mailbox: Mailbox = field(init=False)
    subscriptions: dict[tuple[str, ...], Subscription] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.mailbox = Mailbox(self.queue_limit)

    def close(self) -> None:
        self.mailbox.close()


@dataclass(eq=False)
class Subscription:
    """A connection listening to one named stream (``("hashtag", "cats")``) on some channels."""

    connection: StreamConnection
    stream: tuple[str, ...]
    channels: tuple[str, ...]
    events: frozenset[str]
    # Shared channels carry statuses rendered once for everyone; personal ones per viewer.
    shared: bool = False
    media_only: bool = False

    @property
    def viewer_id(self) -> int | None:
        return self.connection.account_id

    def accepts(self, event: str) -> bool:
        return event in self.events

    def send(self, event: str, payload: str) -> None:
        self.connection.mailbox.offer(Outgoing(self.stream, event, payload))


class ConnectionRegistry:
    """Open connections of this process, counted per account and per client address."""

    def __init__(self, *, per_account: int, per_address: int) -> None:
        self.per_account = per_account
        self.per_address = per_address
        self._open: set[StreamConnection] = set()
        self._by_account: dict[int, int] = {}
        self._by_address: dict[str, int] = {}

    def __len__(self) -> int:
        return len(self._open)

    def admit(self, connection: StreamConnection) -> str | None:
        """Register ``connection``, or say why it is refused."""
        account_id = connection.account_id
        if account_id is not None and self._by_account.get(account_id, 0) >= self.per_account:
            return "Too many streaming connections for this account"
        if self._by_address.get(connection.address, 0) >= self.per_address:
            return "Too many streaming connections from this address"
        self._open.add(connection)
        if connection.account_id is not None:
            self._by_account[connection.account_id] = (
                self._by_account.get(connection.account_id, 0) + 1
            )
        self._by_address[connection.address] = self._by_address.get(connection.address, 0) + 1
        return None

    def release(self, connection: StreamConnection) -> None:
        if connection not in self._open:
            return
        self._open.discard(connection)
        if connection.account_id is not None:
            _decrement(self._by_account, connection.account_id)
        _decrement(self._by_address, connection.address)

    def viewers(self) -> set[int]:
        return set(self._by_account)

    def connections(self) -> list[StreamConnection]:
        return list(self._open)

    def close_all(self) -> None:
        for connection in list(self._open):
            connection.close()


def _decrement(counts: dict[Key, int], key: Key) -> None:
    remaining = counts.get(key, 0) - 1
    if remaining > 0:
        counts[key] = remaining
    else:
        counts.pop(key, None)
