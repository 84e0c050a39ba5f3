"""Absorbing a join storm: listening handshakes are admitted at a steady rate.

A token bucket per process: ``rate`` joins a second, up to ``burst`` at once. A handshake
beyond it is answered 503 with ``Retry-After`` before any database work is done, and the
player retries after that delay plus jitter, so a storm spreads itself out instead of
piling up.
"""

from __future__ import annotations

import math
import time


class JoinAdmission:
    def __init__(self, rate: float, burst: int) -> None:
        self.rate = rate
        self.burst = float(burst)
        self._tokens = float(burst)
        self._updated = time.monotonic()
        self.admitted = 0
        self.refused = 0

    def admit(self) -> float:
        """0 if this join may go ahead now, else the seconds to wait before retrying."""
        if self.rate <= 0:
            self.admitted += 1
            return 0.0
        now = time.monotonic()
        self._tokens = min(self.burst, self._tokens + (now - self._updated) * self.rate)
        self._updated = now
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            self.admitted += 1
            return 0.0
        self.refused += 1
        return (1.0 - self._tokens) / self.rate

    @staticmethod
    def retry_after(wait: float) -> str:
        return str(max(1, math.ceil(wait)))
