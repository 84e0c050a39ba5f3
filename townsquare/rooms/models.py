"""Rooms and the people in them."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Boolean, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from townsquare.db.base import Base, utcnow

ROOM_STATES = ("scheduled", "live", "ended")
ROOM_VISIBILITIES = ("public", "private")
# The host is the room's ``host_id``; everyone else's part is a member row's ``role``.
MEMBER_ROLES = ("cohost", "speaker", "listener")


class Room(Base):
    __tablename__ = "rooms"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    host_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    title: Mapped[str] = mapped_column(String(200))
    visibility: Mapped[str] = mapped_column(String(16), default="public")
    state: Mapped[str] = mapped_column(String(16), default="scheduled")
    scheduled_at: Mapped[dt.datetime | None] = mapped_column(default=None)
    started_at: Mapped[dt.datetime | None] = mapped_column(default=None)
    ended_at: Mapped[dt.datetime | None] = mapped_column(default=None)
    # The host's status announcing the room in timelines.
    status_id: Mapped[int | None] = mapped_column(
        ForeignKey("statuses.id", ondelete="SET NULL"), default=None
    )
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    __table_args__ = (Index("ix_rooms_state_id", "state", "id"),)


class RoomMember(Base):
    """Someone's part in a room other than hosting it: invited audience, speaker, co-host."""

    __tablename__ = "room_members"

    room_id: Mapped[int] = mapped_column(
        ForeignKey("rooms.id", ondelete="CASCADE"), primary_key=True
    )
    account_id: Mapped[int] = mapped_column(
        ForeignKey("accounts.id", ondelete="CASCADE"), primary_key=True
    )
    role: Mapped[str] = mapped_column(String(16), default="listener")
    # Private rooms admit only accounts the hosts invited.
    invited: Mapped[bool] = mapped_column(Boolean, default=False)
    hand_raised_at: Mapped[dt.datetime | None] = mapped_column(default=None)
    muted: Mapped[bool] = mapped_column(Boolean, default=False)
    removed: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
