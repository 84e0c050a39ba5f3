"""Rooms and participants as the API shows them."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from townsquare.accounts.entities import account_entity, iso_time
from townsquare.accounts.models import Account
from townsquare.config import Settings
from townsquare.rooms.models import Room, RoomMember
from townsquare.rooms.service import part_in


def _time(value: Any) -> str | None:
    return iso_time(value) if value is not None else None


async def room_entity(
    session: AsyncSession,
    settings: Settings,
    room: Room,
    viewer_id: int | None,
    listeners_count: int,
) -> dict[str, Any]:
    host = await session.get(Account, room.host_id)
    assert host is not None
    part = await part_in(session, room, viewer_id)
    base = settings.public_url
    return {
        "id": str(room.id),
        "title": room.title,
        "state": room.state,
        "visibility": room.visibility,
        "scheduled_at": _time(room.scheduled_at),
        "started_at": _time(room.started_at),
        "ended_at": _time(room.ended_at),
        "created_at": _time(room.created_at),
        "host": account_entity(host, settings),
        "status_id": str(room.status_id) if room.status_id else None,
        "url": f"{base}/rooms/{room.id}",
        "listen_url": f"{base.replace('http', 'ws', 1)}/api/v1/rooms/{room.id}/listen",
        "playlist_url": f"{base}/api/v1/rooms/{room.id}/playlist",
        "listeners_count": listeners_count,
        "role": part.role,
        "muted": bool(part.member and part.member.muted),
        "hand_raised": bool(part.member and part.member.hand_raised_at),
    }


def member_entity(member: RoomMember, account: Account, settings: Settings) -> dict[str, Any]:
    return {
        "account": account_entity(account, settings),
        "role": member.role,
        "invited": member.invited,
        "muted": member.muted,
        "removed": member.removed,
        "hand_raised_at": _time(member.hand_raised_at),
    }


async def participants(
    session: AsyncSession, settings: Settings, room: Room
) -> list[dict[str, Any]]:
    """The host first, then every member who was not removed."""
    host = await session.get(Account, room.host_id)
    assert host is not None
    found: list[dict[str, Any]] = [
        {
            "account": account_entity(host, settings),
            "role": "host",
            "invited": True,
            "muted": False,
            "removed": False,
            "hand_raised_at": None,
        }
    ]
    rows = await session.execute(
        select(RoomMember, Account)
        .join(Account, Account.id == RoomMember.account_id)
        .where(RoomMember.room_id == room.id, RoomMember.removed.is_(False))
        .order_by(RoomMember.created_at, RoomMember.account_id)
    )
    found += [member_entity(member, account, settings) for member, account in rows.all()]
    return found
