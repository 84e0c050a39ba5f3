"""Login names refused moments ago, answered in front of the app while their limit lasts.

The per-account limit (:mod:`townsquare.shield.logins`) is checked once the database has said
who a login name belongs to; a stuffing run keeps trying the same names long after. Each
worker remembers the names it refused and until when, and admission control answers the next
password grants for them with a ready-made ``429`` before the app or the database is involved.
"""

from __future__ import annotations

import math
import time
from urllib.parse import parse_qsl

import orjson


class LimitedLogins:
    """Login names this worker recently refused for the per-account limit, and until when.

    A stuffing run keeps trying the same names; once one is refused, the next attempts with it
    are answered in front of the app (:func:`refusal`) before the database is asked who the
    name belongs to. Names that match an account and names that do not are remembered alike,
    so this tells nobody which accounts exist either.
    """

    def __init__(self, max_entries: int = 65_536) -> None:
        self.max_entries = max_entries
        self.until: dict[str, float] = {}

    def refuse(self, name: str, until: float) -> None:
        if len(self.until) >= self.max_entries:
            now = time.time()
            self.until = {key: end for key, end in self.until.items() if end > now}
            if len(self.until) >= self.max_entries:
                self.until.clear()
        self.until[name] = until

    def retry_after(self, name: str, now: float) -> int | None:
        until = self.until.get(name)
        if until is None:
            return None
        if until <= now:
            del self.until[name]
            return None
        return max(1, math.ceil(until - now))

    def clear(self) -> None:
        self.until.clear()


TOO_MANY_LOGINS = orjson.dumps({"error": "Too many login attempts; try again later"})
TOO_MANY_LOGINS_LENGTH = str(len(TOO_MANY_LOGINS)).encode()


def password_grant_login(body: bytes, content_type: bytes) -> str | None:
    """The login name of a password grant's body (form or JSON), or None for anything else."""
    if b"password" not in body:
        return None
    if content_type.startswith(b"application/json"):
        try:
            fields = orjson.loads(body)
        except orjson.JSONDecodeError:
            return None
        if not isinstance(fields, dict) or fields.get("grant_type") != "password":
            return None
        username = fields.get("username")
        return username.strip().lower() if isinstance(username, str) else None
    if not content_type.startswith(b"application/x-www-form-urlencoded"):
        return None
    grant = username = None
    for key, value in parse_qsl(body.decode("latin-1"), keep_blank_values=True):
        if key == "grant_type":
            grant = value
        elif key == "username":
            username = value
    if grant != "password" or username is None:
        return None
    return username.strip().lower()


def refusal(
    limited_logins: LimitedLogins, body: bytes, content_type: bytes
) -> list[tuple[bytes, bytes]] | None:
    """The headers of a ready-made 429 (body :data:`TOO_MANY_LOGINS`) for a password grant
    whose login name this worker refused moments ago, or None to let it through."""
    if not limited_logins.until:
        return None
    name = password_grant_login(body, content_type)
    if name is None:
        return None
    retry_after = limited_logins.retry_after(name, time.time())
    if retry_after is None:
        return None
    return [
        (b"content-type", b"application/json"),
        (b"content-length", TOO_MANY_LOGINS_LENGTH),
        (b"retry-after", str(retry_after).encode()),
    ]
