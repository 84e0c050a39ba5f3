"""The streams a client can ask for, and the channels and events each one carries.

A stream is what the Mastodon API names (``user``, ``public:local``, ``hashtag`` with a tag);
a channel is where publishers put events (``user:<id>``, ``public:local``, ``hashtag:<tag>``).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from townsquare.api.errors import ApiError
from townsquare.oauth.scopes import covers
from townsquare.streaming.connection import StreamConnection, Subscription
from townsquare.timelines.models import UserList

STATUS_EVENTS = frozenset({"update", "status.update", "delete"})
USER_EVENTS = STATUS_EVENTS | {
    "filters_changed",
    "announcement",
    "announcement.reaction",
    "announcement.delete",
    "notifications_merged",
}
PUBLIC_STREAMS = {
    "public": "public",
    "public:media": "public",
    "public:local": "public:local",
    "public:local:media": "public:local",
    # Every account lives on this server, so the remote streams exist but stay quiet.
    "public:remote": None,
    "public:remote:media": None,
}
STREAM_NAMES = frozenset(
    {*PUBLIC_STREAMS, "user", "user:notification", "hashtag", "hashtag:local", "list", "direct"}
)
DELETES = "deletes"
MAX_TAG_LENGTH = 100


@dataclass(frozen=True)
class StreamRequest:
    """What a client asked for: a stream name and its ``tag`` or ``list`` parameter."""

    name: str
    tag: str | None = None
    list: str | None = None

    @property
    def key(self) -> tuple[str, ...]:
        """Identifies the subscription, so subscribing twice is subscribing once."""
        if self.name in ("hashtag", "hashtag:local"):
            return (self.name, normalise_tag(self.tag))
        if self.name == "list":
            return (self.name, str(self.list or ""))
        return (self.name,)

    @property
    def stream(self) -> tuple[str, ...]:
        """The ``stream`` array of WebSocket messages, as Mastodon sends it."""
        if self.name in ("hashtag", "hashtag:local"):
            return (self.name, self.tag or "")
        if self.name == "list":
            return (self.name, str(self.list or ""))
        return (self.name,)


def normalise_tag(tag: str | None) -> str:
    return (tag or "").strip().lstrip("#").lower()


def _require_scope(connection: StreamConnection, *scopes: str) -> None:
    if not any(covers(connection.scopes, scope) for scope in scopes):
        raise ApiError(401, "Access token does not cover required scopes")


async def resolve_stream(
    session: AsyncSession, connection: StreamConnection, request: StreamRequest
) -> Subscription:
    """The subscription ``request`` stands for, or an :class:`ApiError` saying why not."""
    name = request.name
    if name not in STREAM_NAMES:
        raise ApiError(400, "Unknown stream type")
    account_id = connection.account_id
    if account_id is None:
        raise ApiError(401, "Missing access token")

    def subscription(
        channels: tuple[str, ...],
        events: frozenset[str],
        *,
        shared: bool = False,
        media_only: bool = False,
    ) -> Subscription:
        return Subscription(
            connection=connection,
            stream=request.stream,
            channels=channels,
            events=events,
            shared=shared,
            media_only=media_only,
        )

    if name == "user:notification":
        _require_scope(connection, "read:notifications")
        return subscription((f"user:{account_id}",), frozenset({"notification"}))
    _require_scope(connection, "read:statuses")
    if name == "user":
        events = USER_EVENTS
        if covers(connection.scopes, "read:notifications"):
            events = events | {"notification"}
        return subscription((f"user:{account_id}", DELETES), events)
    if name in PUBLIC_STREAMS:
        channel = PUBLIC_STREAMS[name]
        channels = (channel, DELETES) if channel else ()
        return subscription(
            channels, STATUS_EVENTS, shared=True, media_only=name.endswith(":media")
        )
    if name in ("hashtag", "hashtag:local"):
        tag = normalise_tag(request.tag)
        if not tag:
            raise ApiError(400, "No tag for stream provided")
        if len(tag) > MAX_TAG_LENGTH:
            raise ApiError(400, "Tag is too long")
        return subscription((f"hashtag:{tag}", DELETES), STATUS_EVENTS, shared=True)
    if name == "list":
        list_id = _parse_id(request.list)
        owner = (
            await session.execute(select(UserList.account_id).where(UserList.id == list_id))
        ).scalar()
        if owner != account_id:
            raise ApiError(404, "Not authorized to stream this list")
        return subscription((f"list:{list_id}", DELETES), STATUS_EVENTS)
    # direct
    return subscription((f"direct:{account_id}",), frozenset({"conversation"}))


def _parse_id(value: str | None) -> int:
    if not value:
        raise ApiError(400, "No list for stream provided")
    try:
        number = int(value)
    except ValueError:
        raise ApiError(404, "Not authorized to stream this list") from None
    if not 0 < number < 2**63:
        raise ApiError(404, "Not authorized to stream this list")
    return number
