"""Mastodon's search operators in ``q``: ``from:``, ``has:``, ``is:``, ``before:``, ``after:``.

Anything that is not a known operator stays a word to search for.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

MAX_WORDS = 16


@dataclass
class ParsedQuery:
    words: list[str] = field(default_factory=list)
    from_username: str | None = None
    from_me: bool = False
    has_media: bool = False
    has_poll: bool = False
    is_reply: bool | None = None
    is_sensitive: bool = False
    before: dt.datetime | None = None
    after: dt.datetime | None = None

    @property
    def has_filters(self) -> bool:
        return bool(
            self.from_username
            or self.from_me
            or self.has_media
            or self.has_poll
            or self.is_reply is not None
            or self.is_sensitive
            or self.before
            or self.after
        )


def _date(value: str) -> dt.datetime | None:
    try:
        return dt.datetime.strptime(value, "%Y-%m-%d").replace(tzinfo=dt.UTC)
    except ValueError:
        return None


def _apply(parsed: ParsedQuery, name: str, value: str, negated: bool) -> bool:
    """Record one operator; False when it is not one (then it is searched as a word)."""
    if name == "from" and not negated and value:
        if value.lower() == "me":
            parsed.from_me = True
        else:
            parsed.from_username = value.lstrip("@")
        return True
    if name == "has" and not negated and value in ("media", "poll"):
        parsed.has_media |= value == "media"
        parsed.has_poll |= value == "poll"
        return True
    if name == "is" and value == "reply":
        parsed.is_reply = not negated
        return True
    if name == "is" and value == "sensitive" and not negated:
        parsed.is_sensitive = True
        return True
    if name in ("before", "after") and not negated:
        moment = _date(value)
        if moment is None:
            return False
        if name == "before":
            parsed.before = moment
        else:
            parsed.after = moment + dt.timedelta(days=1)
        return True
    return False


def parse_query(q: str) -> ParsedQuery:
    parsed = ParsedQuery()
    for token in q.split():
        negated = token.startswith("-")
        name, colon, value = token.removeprefix("-").partition(":")
        if colon and _apply(parsed, name.lower(), value.lower(), negated):
            continue
        if any(ch.isalnum() for ch in token):
            parsed.words.append(token)
    parsed.words = parsed.words[:MAX_WORDS]
    return parsed
