"""The event log that carries streaming events between worker processes and nodes."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import String, Text
from sqlalchemy.orm import Mapped, mapped_column

from townsquare.db.base import Base, SerialKey, utcnow


class StreamEvent(Base):
    """One event on one channel (``user:<id>``, ``public``, ``public:local``, ``hashtag:<tag>``,
    ``list:<id>``, ``direct:<id>``). Every process tails this table and delivers to its own
    subscribers; rows older than a few minutes are pruned."""

    __tablename__ = "stream_events"

    id: Mapped[int] = mapped_column(SerialKey, primary_key=True, autoincrement=True)
    channel: Mapped[str] = mapped_column(String(200))
    event: Mapped[str] = mapped_column(String(32))
    payload: Mapped[str] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow, index=True)
