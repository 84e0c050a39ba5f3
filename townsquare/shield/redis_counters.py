"""Counters shared by every worker and machine, in Redis.

The same sliding-window count as :class:`~townsquare.shield.counters.MemoryCounterStore`, done
in one Lua script so the check and the count are atomic across workers. When Redis cannot be
reached the count falls back to the worker's own store, so an outage of Redis loosens the
limits (to one worker's share) instead of failing requests.
"""

from __future__ import annotations

import logging
import math
import time

from redis.asyncio import Redis
from redis.exceptions import RedisError

from townsquare.shield.counters import MemoryCounterStore, Verdict

log = logging.getLogger("townsquare.shield")

# KEYS: previous window, current window. ARGV: limit, period, now, count (1) or peek (0).
SLIDING_WINDOW = """
local limit = tonumber(ARGV[1])
local period = tonumber(ARGV[2])
local now = tonumber(ARGV[3])
local index = math.floor(now / period)
local previous = tonumber(redis.call("GET", KEYS[1]) or "0")
local current = tonumber(redis.call("GET", KEYS[2]) or "0")
local estimate = previous * (1 - (now - index * period) / period) + current
if ARGV[4] == "1" then
  if estimate + 1 > limit then
    return {0, tostring(estimate)}
  end
  redis.call("INCR", KEYS[2])
  redis.call("EXPIRE", KEYS[2], math.ceil(period * 2) + 1)
end
return {1, tostring(estimate)}
"""

# After an error, Redis is left alone for this long before it is tried again.
RETRY_AFTER_ERROR = 5.0


class RedisCounterStore:
    def __init__(self, client: Redis, *, prefix: str = "townsquare:count:") -> None:
        self.client = client
        self.prefix = prefix
        self.script = client.register_script(SLIDING_WINDOW)
        self.fallback = MemoryCounterStore()
        self._down_until = 0.0

    @classmethod
    def from_url(cls, url: str) -> RedisCounterStore:
        return cls(Redis.from_url(url, socket_timeout=1.0, socket_connect_timeout=1.0))

    async def acquire(self, key: str, limit: int, period: float) -> Verdict:
        return await self._run(key, limit, period, count=True)

    async def peek(self, key: str, limit: int, period: float) -> Verdict:
        return await self._run(key, limit, period, count=False)

    async def _run(self, key: str, limit: int, period: float, *, count: bool) -> Verdict:
        now = time.time()
        if now < self._down_until:
            return await self._fallback(key, limit, period, count)
        index = int(now // period)
        keys = [
            f"{self.prefix}{key}:{period:g}:{index - 1}",
            f"{self.prefix}{key}:{period:g}:{index}",
        ]
        try:
            allowed, estimate = await self.script(keys=keys, args=[limit, period, now, int(count)])
        except (RedisError, OSError) as error:
            log.warning("shared counters unavailable, counting per worker: %s", error)
            self._down_until = now + RETRY_AFTER_ERROR
            return await self._fallback(key, limit, period, count)
        estimate = float(estimate)
        reset_at = (index + 1) * period
        if count:
            if not allowed:
                return Verdict(False, limit, 0, reset_at)
            return Verdict(True, limit, max(0, math.floor(limit - estimate - 1)), reset_at)
        remaining = max(0, math.floor(limit - estimate))
        return Verdict(remaining > 0, limit, remaining, reset_at)

    async def _fallback(self, key: str, limit: int, period: float, count: bool) -> Verdict:
        if count:
            return await self.fallback.acquire(key, limit, period)
        return await self.fallback.peek(key, limit, period)

    async def aclose(self) -> None:
        await self.client.aclose()
