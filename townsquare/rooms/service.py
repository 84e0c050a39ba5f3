"""Rooms: creating, starting and ending them, and who may do what in them.

Every function takes a database session and the acting account, and enforces the rules itself:
the host runs the room, co-hosts help (invite to speak, mute, remove), speakers speak,
everyone else listens. A private room is seen only by its hosts and the accounts invited to it.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from townsquare.accounts.models import Account
from townsquare.api.errors import ApiError, not_found, unprocessable
from townsquare.config import Settings
from townsquare.db.base import utcnow
from townsquare.ids import new_id
from townsquare.jobs.queue import enqueue
from townsquare.rooms.models import ROOM_VISIBILITIES, Room, RoomMember

MANAGERS = ("host", "cohost")
SPEAKING_ROLES = ("host", "cohost", "speaker")
NOTIFY_FOLLOWERS_JOB = "rooms.notify_followers"


@dataclass(frozen=True)
class RoomDraft:
    title: str
    visibility: str = "public"
    scheduled_at: dt.datetime | None = None


@dataclass(frozen=True)
class Part:
    """What an account may do in a room."""

    role: str | None  # host, cohost, speaker, listener; None for a stranger
    member: RoomMember | None

    @property
    def may_manage(self) -> bool:
        return self.role in MANAGERS

    @property
    def may_speak(self) -> bool:
        muted = self.member is not None and self.member.muted
        return self.role in SPEAKING_ROLES and not muted


async def create_room(session: AsyncSession, host: Account, draft: RoomDraft) -> Room:
    title = draft.title.strip()
    if not title:
        raise unprocessable("title can't be blank")
    if len(title) > 200:
        raise unprocessable("title is too long (at most 200 characters)")
    if draft.visibility not in ROOM_VISIBILITIES:
        raise unprocessable("visibility must be public or private")
    scheduled_at = draft.scheduled_at
    if scheduled_at is not None:
        if scheduled_at.tzinfo is None:
            scheduled_at = scheduled_at.replace(tzinfo=dt.UTC)
        if scheduled_at <= utcnow():
            raise unprocessable("scheduled_at must be in the future")
    room = Room(
        id=new_id(),
        host_id=host.id,
        title=title,
        visibility=draft.visibility,
        state="scheduled",
        scheduled_at=scheduled_at,
        created_at=utcnow(),
    )
    session.add(room)
    await session.flush()
    return room


async def part_in(session: AsyncSession, room: Room, account_id: int | None) -> Part:
    if account_id is None:
        return Part(None, None)
    if account_id == room.host_id:
        return Part("host", None)
    member = await session.get(RoomMember, (room.id, account_id))
    if member is None or member.removed:
        return Part(None, member)
    return Part(member.role, member)


async def visible_room(session: AsyncSession, room_id: int, account_id: int | None) -> Room:
    """The room if ``account_id`` may see it; 404 otherwise (private rooms are not revealed)."""
    room = await session.get(Room, room_id)
    if room is None:
        raise not_found()
    if room.visibility == "private":
        if account_id is None:
            raise not_found()
        part = await part_in(session, room, account_id)
        if part.role is None and not (part.member is not None and part.member.invited):
            raise not_found()
    return room


async def check_may_listen(session: AsyncSession, room: Room, account_id: int | None) -> Part:
    """Raises unless the account may listen to the room now."""
    part = await part_in(session, room, account_id)
    if part.member is not None and part.member.removed:
        raise ApiError(403, "You were removed from this room")
    invited = part.member is not None and part.member.invited
    if room.visibility == "private" and part.role is None and not invited:
        raise not_found()
    if room.state != "live":
        raise ApiError(
            409, "This room is not live" if room.state == "scheduled" else "This room has ended"
        )
    return part


async def _managed_room(session: AsyncSession, actor: Account, room_id: int) -> Room:
    room = await visible_room(session, room_id, actor.id)
    part = await part_in(session, room, actor.id)
    if not part.may_manage:
        raise ApiError(403, "Only the host and co-hosts may do this")
    return room


async def start_room(
    session: AsyncSession, settings: Settings, actor: Account, room_id: int
) -> Room:
    room = await _managed_room(session, actor, room_id)
    if room.state == "live":
        return room
    if room.state == "ended":
        raise ApiError(409, "This room has ended")
    room.state = "live"
    room.started_at = utcnow()
    if room.visibility == "public":
        room.status_id = await _announce(session, settings, room)
        enqueue(session, NOTIFY_FOLLOWERS_JOB, {"room_id": room.id})
    return room


async def _announce(session: AsyncSession, settings: Settings, room: Room) -> int:
    """A status by the host that shows the room in timelines and links its page."""
    from townsquare.statuses.create import create_status
    from townsquare.statuses.schemas import StatusDraft

    host = await session.get(Account, room.host_id)
    assert host is not None
    url = f"{settings.public_url}/rooms/{room.id}"
    text = f"🔴 Live now: {room.title}\n{url}"
    status = await create_status(
        session, settings, host, StatusDraft(status=text, visibility="public")
    )
    return status.id


async def end_room(session: AsyncSession, actor: Account, room_id: int) -> Room:
    room = await _managed_room(session, actor, room_id)
    if room.state == "ended":
        return room
    room.state = "ended"
    room.ended_at = utcnow()
    if room.started_at is None:
        room.started_at = room.ended_at
    return room


async def _member(session: AsyncSession, room: Room, account_id: int) -> RoomMember:
    if await session.get(Account, account_id) is None:
        raise not_found("Account")
    member = await session.get(RoomMember, (room.id, account_id))
    if member is None:
        member = RoomMember(room_id=room.id, account_id=account_id, role="listener")
        member.invited = False
        member.muted = False
        member.removed = False
        member.created_at = utcnow()
        session.add(member)
    return member


async def set_role(
    session: AsyncSession, actor: Account, room_id: int, target_id: int, role: str
) -> RoomMember:
    """Make someone a co-host (host only), a speaker, or a listener again."""
    room = await _managed_room(session, actor, room_id)
    if target_id == room.host_id:
        raise ApiError(422, "Validation failed: the host's part cannot change")
    if role == "cohost" and actor.id != room.host_id:
        raise ApiError(403, "Only the host may appoint co-hosts")
    member = await _member(session, room, target_id)
    if member.role == "cohost" and actor.id != room.host_id:
        raise ApiError(403, "Only the host may change a co-host's part")
    if member.removed:
        raise ApiError(409, "This account was removed from the room")
    member.role = role
    member.hand_raised_at = None
    if role != "listener":
        member.muted = False
    return member


async def set_muted(
    session: AsyncSession, actor: Account, room_id: int, target_id: int, muted: bool
) -> RoomMember:
    room = await _managed_room(session, actor, room_id)
    if target_id == room.host_id:
        raise ApiError(403, "The host cannot be muted")
    member = await _member(session, room, target_id)
    if member.role == "cohost" and actor.id != room.host_id:
        raise ApiError(403, "Only the host may mute a co-host")
    member.muted = muted
    return member


async def remove_member(
    session: AsyncSession, actor: Account, room_id: int, target_id: int
) -> RoomMember:
    room = await _managed_room(session, actor, room_id)
    if target_id == room.host_id or target_id == actor.id:
        raise ApiError(403, "This account cannot be removed")
    member = await _member(session, room, target_id)
    if member.role == "cohost" and actor.id != room.host_id:
        raise ApiError(403, "Only the host may remove a co-host")
    member.removed = True
    member.role = "listener"
    member.hand_raised_at = None
    return member


async def invite(session: AsyncSession, actor: Account, room_id: int, target_id: int) -> RoomMember:
    """Let an account into a private room's audience (or un-remove it)."""
    room = await _managed_room(session, actor, room_id)
    member = await _member(session, room, target_id)
    member.invited = True
    member.removed = False
    return member


async def raise_hand(
    session: AsyncSession, actor: Account, room_id: int, raised: bool
) -> RoomMember:
    room = await visible_room(session, room_id, actor.id)
    if room.state != "live":
        raise ApiError(409, "This room is not live")
    if actor.id == room.host_id:
        raise ApiError(422, "Validation failed: the host already speaks")
    member = await _member(session, room, actor.id)
    if member.removed:
        raise ApiError(403, "You were removed from this room")
    member.hand_raised_at = utcnow() if raised else None
    return member


async def members_of(session: AsyncSession, room_id: int) -> list[RoomMember]:
    rows = await session.scalars(
        select(RoomMember)
        .where(RoomMember.room_id == room_id)
        .order_by(RoomMember.created_at, RoomMember.account_id)
    )
    return list(rows)


async def rooms_for(
    session: AsyncSession, account_id: int | None, *, limit: int = 40
) -> list[Room]:
    """Live and upcoming rooms the account may see, newest first, with its own rooms."""
    query = select(Room).where(Room.state != "ended")
    if account_id is None:
        query = query.where(Room.visibility == "public")
    else:
        invited = select(RoomMember.room_id).where(
            RoomMember.account_id == account_id, RoomMember.removed.is_(False)
        )
        query = query.where(
            (Room.visibility == "public") | (Room.host_id == account_id) | Room.id.in_(invited)
        )
    rows = await session.scalars(query.order_by(Room.id.desc()).limit(limit))
    return list(rows)
