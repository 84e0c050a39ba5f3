"""OAuth scopes as Mastodon defines them, and whether a token's scopes cover a required one."""

from __future__ import annotations

TOP_LEVEL = ("read", "write", "follow", "push", "profile", "admin:read", "admin:write")
GRANULAR = (
    "read:accounts", "read:blocks", "read:bookmarks", "read:favourites", "read:filters",
    "read:follows", "read:lists", "read:mutes", "read:notifications", "read:search",
    "read:statuses", "write:accounts", "write:blocks", "write:bookmarks", "write:conversations",
    "write:favourites", "write:filters", "write:follows", "write:lists", "write:media",
    "write:mutes", "write:notifications", "write:reports", "write:statuses",
    "admin:read:accounts", "admin:read:reports", "admin:write:accounts", "admin:write:reports",
)  # fmt: skip
ALL_SCOPES = frozenset(TOP_LEVEL + GRANULAR)
# The legacy "follow" scope grants these.
FOLLOW_GRANTS = frozenset(
    {"read:blocks", "write:blocks", "read:follows", "write:follows", "read:mutes", "write:mutes"}
)


def parse_scopes(value: str | None, default: str = "read") -> list[str]:
    """Split a space- (or plus-) separated scope string; unknown scopes raise ``ValueError``."""
    raw = (value or default).replace("+", " ").split()
    seen: list[str] = []
    for scope in raw:
        if scope not in ALL_SCOPES:
            raise ValueError(f"unknown scope {scope!r}")
        if scope not in seen:
            seen.append(scope)
    return seen


def covers(granted: frozenset[str] | set[str], required: str) -> bool:
    """Whether ``granted`` allows ``required`` (``read`` covers ``read:statuses`` and so on)."""
    if required in granted:
        return True
    if required == "profile":
        return "read" in granted or "read:accounts" in granted
    head, _, _ = required.rpartition(":")
    while head:
        if head in granted:
            return True
        head, _, _ = head.rpartition(":")
    return required in FOLLOW_GRANTS and "follow" in granted


def subset(requested: list[str], allowed: list[str]) -> bool:
    """Whether every requested scope is covered by the app's registered scopes."""
    allowed_set = frozenset(allowed)
    return all(covers(allowed_set, scope) for scope in requested)


_DESCRIPTIONS = {
    "read": "Read everything your account can see",
    "write": "Post, change and delete on your behalf",
    "follow": "Follow, block and mute accounts",
    "push": "Receive push notifications",
    "profile": "See your profile",
    "admin:read": "Read moderation data",
    "admin:write": "Take moderation actions",
}


def describe_scope(scope: str) -> str:
    """A phrase for the consent page: ``read:statuses`` becomes "Read statuses"."""
    if scope in _DESCRIPTIONS:
        return _DESCRIPTIONS[scope]
    action, _, subject = scope.rpartition(":")
    verb = {"read": "Read", "write": "Change", "admin:read": "Read", "admin:write": "Moderate"}
    return f"{verb.get(action, action.capitalize())} {subject}"
