"""Mastodon-style snowflake identifiers: milliseconds since the epoch, then 16 bits of sequence.

IDs sort by creation time, so ``max_id``/``since_id`` pagination is an index range scan.
"""

from __future__ import annotations

import os
import threading
import time

_lock = threading.Lock()
_last_ms = 0
_sequence = 0
# A per-process random start keeps two workers that mint in the same millisecond apart.
_salt = int.from_bytes(os.urandom(2), "big")


def new_id(at_ms: int | None = None) -> int:
    """A fresh, time-ordered 64-bit id (fits a signed BIGINT)."""
    global _last_ms, _sequence
    with _lock:
        now = at_ms if at_ms is not None else int(time.time() * 1000)
        if now <= _last_ms:
            now = _last_ms
            _sequence = (_sequence + 1) & 0xFFFF
            if _sequence == _salt & 0xFFFF:
                now += 1
                _last_ms = now
        else:
            _last_ms = now
            _sequence = _salt
        return (now << 16) | _sequence


def id_at(ms: int) -> int:
    """The smallest id minted at ``ms``: used to turn dates into pagination bounds."""
    return ms << 16


def id_time_ms(snowflake: int) -> int:
    return snowflake >> 16
