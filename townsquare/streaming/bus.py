"""Who listens to which channel in this process.

The tailer reads events from the shared log and asks the bus for the subscriptions of each
event's channel. Behind the :class:`EventBus` protocol so another transport (Redis pub/sub in
cluster mode) can carry events without touching the connections or the delivery rules.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Protocol

from townsquare.streaming.connection import Subscription


@dataclass(frozen=True)
class ChannelEvent:
    """One row of the event log as the tailer hands it to delivery."""

    id: int
    channel: str
    event: str
    payload: Any  # the decoded JSON payload (ids), or the raw string if it was not JSON


class EventBus(Protocol):
    def subscribe(self, channel: str, subscription: Subscription) -> None: ...

    def unsubscribe(self, channel: str, subscription: Subscription) -> None: ...

    def subscriptions(self, channel: str) -> list[Subscription]: ...

    def listened(self, channel: str) -> bool:
        """Whether ``channel`` has a subscription here (asked for every reader of a status,
        so it must be cheap)."""
        ...

    def has_subscribers(self) -> bool: ...


class LocalEventBus:
    """Subscriptions of this process's connections, by channel."""

    def __init__(self) -> None:
        self._by_channel: dict[str, set[Subscription]] = {}

    def subscribe(self, channel: str, subscription: Subscription) -> None:
        self._by_channel.setdefault(channel, set()).add(subscription)

    def unsubscribe(self, channel: str, subscription: Subscription) -> None:
        listeners = self._by_channel.get(channel)
        if listeners is None:
            return
        listeners.discard(subscription)
        if not listeners:
            del self._by_channel[channel]

    def subscriptions(self, channel: str) -> list[Subscription]:
        return list(self._by_channel.get(channel, ()))

    def listened(self, channel: str) -> bool:
        return channel in self._by_channel

    def has_subscribers(self) -> bool:
        return bool(self._by_channel)

    def channels(self) -> Iterable[str]:
        return self._by_channel.keys()
