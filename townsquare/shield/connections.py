"""Who may open a connection, decided when it is accepted, before a parser exists for it.

A flood of new connections costs a worker its accept, its protocol object, its HTTP parser and
the parse of a request head before any later layer can refuse it; at a thousand connections a
second that alone is more CPU than a worker has. The connection layer therefore decides at
``connection_made``, from the client address alone:

- :class:`ConnectionRate` counts new connections per address and per prefix (/24, /48) in fixed
  windows; beyond the rate a connection gets a ready-made ``429`` and is closed.
- :class:`LoopLag` measures how late this worker's event loop runs, with one timer.
- :class:`KnownAddresses` remembers, in a bounded LRU, the addresses that recently presented a
  token or session found valid (``TRUSTED``) or a proof-of-work pass (``PASSED``). While the
  loop lags, addresses with no such history get a ready-made ``503`` on new connections and on
  new requests of open ones, before their bytes reach the parser; known addresses go on being
  served. As soon as the lag is gone, everyone is let in again.
- A token vouches for the addresses it comes from only while they are few
  (:class:`Vouchers`): a token seen from more addresses than a person uses is an attacker's
  account lending its standing to a flood, and vouches for none of them any more.

Rates and lag are per worker process (``connection_made`` cannot wait for a shared store); the
known addresses are shared by the workers of a machine through a memory-mapped table.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path

from townsquare.shield.address_table import AddressTable
from townsquare.shield.addresses import address_prefix

UNKNOWN, PASSED, TRUSTED = 0, 1, 2

# Addresses counted at once per window table; a flood from more addresses starts it afresh.
MAX_TRACKED = 100_000


def prefix_of(address: str) -> str:
    """The /24 (IPv4) or /48 (IPv6) an address belongs to, cheaply for plain IPv4."""
    if ":" not in address:
        return address.rpartition(".")[0]
    return address_prefix(address)


class ConnectionRate:
    """New connections per key in fixed windows of ``period`` seconds."""

    def __init__(self, amount: int, period: float) -> None:
        self.amount = amount
        self.period = period
        self.windows: dict[str, list[float]] = {}

    def allows(self, key: str, now: float) -> bool:
        return self.count(key, now) <= self.amount

    def count(self, key: str, now: float) -> float:
        """Count one more connection for ``key``: how many its current window holds now."""
        window = self.windows.get(key)
        if window is None or now - window[0] >= self.period:
            if len(self.windows) >= MAX_TRACKED:
                self.windows.clear()
            self.windows[key] = [now, 1.0]
            return 1.0
        window[1] += 1
        return window[1]

    def clear(self) -> None:
        self.windows.clear()


class LoopLag:
    """How late the event loop runs: a timer due every ``interval`` seconds notes how late it
    fires, smoothed so that a single slow callback does not count as lag."""

    interval = 0.05
    smoothing = 0.25

    def __init__(self) -> None:
        self.loop: asyncio.AbstractEventLoop | None = None
        self.handle: asyncio.TimerHandle | None = None
        self.due = 0.0
        self.lag = 0.0  # seconds, smoothed
        self.peak = 0.0  # the largest single sample seen
        self.held: float | None = None

    def watch(self, loop: asyncio.AbstractEventLoop) -> None:
        """Start measuring ``loop`` (the worker's), unless it is already measured."""
        if self.loop is loop and self.handle is not None:
            return
        if self.handle is not None:
            self.handle.cancel()
        self.loop = loop
        self.lag = self.held or 0.0
        self.due = loop.time() + self.interval
        self.handle = loop.call_at(self.due, self._tick)

    def _tick(self) -> None:
        loop = self.loop
        if loop is None or loop.is_closed():
            self.handle = None
            return
        now = loop.time()
        sample = max(0.0, now - self.due)
        self.peak = max(self.peak, sample)
        if self.held is None:
            self.lag += (sample - self.lag) * self.smoothing
        self.due = now + self.interval
        self.handle = loop.call_at(self.due, self._tick)

    def hold(self, lag: float | None) -> None:
        """Keep the lag at ``lag`` whatever is measured (to rehearse an overload), or measure
        again with None."""
        self.held = lag
        self.lag = 0.0 if lag is None else lag

    def stop(self) -> None:
        if self.handle is not None:
            self.handle.cancel()
        self.handle = None
        self.loop = None
        self.lag = self.held or 0.0


class KnownAddresses:
    """Addresses with a good recent history and how good (``PASSED`` or ``TRUSTED``): in a
    table shared by the machine's workers once :meth:`share` found it, else a bounded LRU of
    this worker's own."""

    def __init__(self, max_entries: int = 65_536) -> None:
        self.max_entries = max_entries
        self.entries: OrderedDict[str, int] = OrderedDict()
        self.table: AddressTable | None = None

    def share(self, path: Path) -> None:
        """Use the table in ``path`` (created if need be), shared with the other workers."""
        if self.table is not None:
            self.table.close()
            self.table = None
        try:
            self.table = AddressTable(path, self.max_entries)
        except OSError:
            self.table = None  # a read-only data directory: each worker keeps its own

    def __len__(self) -> int:
        return len(self.table) if self.table is not None else len(self.entries)

    def mark(self, address: str, standing: int) -> None:
        if self.table is not None:
            self.table.mark(address, standing)
            return
        entries = self.entries
        if entries.get(address, UNKNOWN) > standing:
            entries.move_to_end(address)
            return
        entries[address] = standing
        entries.move_to_end(address)
        if len(entries) > self.max_entries:
            entries.popitem(last=False)

    def standing(self, address: str) -> int:
        if self.table is not None:
            return self.table.standing(address)
        return self.entries.get(address, UNKNOWN)

    def forget(self, address: str) -> None:
        if self.table is not None:
            self.table.forget(address)
        self.entries.pop(address, None)

    def clear(self) -> None:
        if self.table is not None:
            self.table.clear()
        self.entries.clear()


class Vouchers:
    """Which addresses each valid token (by digest) was seen from, LRU; a token seen from more
    than ``max_addresses`` of them stops vouching, and the addresses it vouched for are
    forgotten."""

    def __init__(self, known: KnownAddresses, max_addresses: int = 4) -> None:
        self.known = known
        self.max_addresses = max_addresses
        self.max_entries = known.max_entries
        # None: seen from too many addresses.
        self.addresses: OrderedDict[str, list[str] | None] = OrderedDict()

    def vouch(self, token_digest: str, address: str) -> None:
        seen = self.addresses.get(token_digest, [])
        if seen is None:
            self.addresses.move_to_end(token_digest)
            return
        if address not in seen:
            if len(seen) >= self.max_addresses:
                self.addresses[token_digest] = None
                self.addresses.move_to_end(token_digest)
                for vouched in seen:
                    self.known.forget(vouched)
                return
            seen.append(address)
            self.addresses[token_digest] = seen
        self.addresses.move_to_end(token_digest)
        if len(self.addresses) > self.max_entries:
            self.addresses.popitem(last=False)
        self.known.mark(address, TRUSTED)

    def clear(self) -> None:
        self.addresses.clear()


class ConnectionCounts:
    """What the connection layer refused, for ``/metrics`` (per worker)."""

    def __init__(self) -> None:
        self.rate_refused = 0  # connections over the per-address or per-prefix rate
        self.lag_refused_connections = 0  # new connections from unknown addresses under lag
        self.lag_refused_requests = 0  # requests on open connections, likewise
        self.handshakes_refused = 0  # WebSocket handshakes, before a WebSocket protocol exists
        self.unseen_tokens_refused = 0  # handshakes with a token not validated yet, over rate
        self.door_challenged = 0  # requests answered with a challenge before their parse

    def clear(self) -> None:
        self.rate_refused = self.lag_refused_connections = self.lag_refused_requests = 0
        self.handshakes_refused = self.unseen_tokens_refused = self.door_challenged = 0


# In data_dir: the addresses known to every worker of the machine.
SHARED_TABLE = "shield-known-addresses"

# Whether a proof-of-work pass (first argument) is genuine, current and from the network of
# the address (second): set by the app, where the pass issuer lives; unset, no pass counts.
pass_checker: Callable[[str, str], bool] | None = None
# The answer to a whole request head (first argument) from an address (second) that needs no
# parse, and whether to close the connection after it: a challenge while under attack (see
# townsquare.shield.door); None to parse the request. Set by the app, where the mode lives.
door: Callable[[bytes, str], tuple[bytes, bool] | None] | None = None

# One of each per worker process.
loop_lag = LoopLag()
known_addresses = KnownAddresses()
vouchers = Vouchers(known_addresses)
counts = ConnectionCounts()


def configure(max_addresses: int, addresses_per_token: int, data_dir: Path | None) -> None:
    known_addresses.max_entries = vouchers.max_entries = max(1, max_addresses)
    vouchers.max_addresses = max(1, addresses_per_token)
    if data_dir is not None:
        known_addresses.share(data_dir / SHARED_TABLE)


def remember_token(token_digest: str, address: str) -> None:
    """``address`` just presented a token or session found valid."""
    vouchers.vouch(token_digest, address)


def remember_pass(address: str) -> None:
    """``address`` just presented a valid proof-of-work pass."""
    known_addresses.mark(address, PASSED)
