"""Statuses and what hangs off them: edits, mentions, tags, favourites, bookmarks, pins, polls."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from townsquare.db.base import Base, utcnow

VISIBILITIES = ("public", "unlisted", "private", "direct")


class Status(Base):
    __tablename__ = "statuses"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    in_reply_to_id: Mapped[int | None] = mapped_column(
        ForeignKey("statuses.id", ondelete="SET NULL")
    )
    in_reply_to_account_id: Mapped[int | None] = mapped_column(
        ForeignKey("accounts.id", ondelete="SET NULL")
    )
    reblog_of_id: Mapped[int | None] = mapped_column(ForeignKey("statuses.id", ondelete="CASCADE"))
    quote_of_id: Mapped[int | None] = mapped_column(ForeignKey("statuses.id", ondelete="SET NULL"))
    # The root of the thread; direct messages use it as their conversation.
    thread_id: Mapped[int | None] = mapped_column(index=True)
    text: Mapped[str] = mapped_column(Text, default="")
    content_html: Mapped[str] = mapped_column(Text, default="")
    spoiler_text: Mapped[str] = mapped_column(Text, default="")
    visibility: Mapped[str] = mapped_column(String(16), default="public")
    sensitive: Mapped[bool] = mapped_column(default=False)
    language: Mapped[str | None] = mapped_column(String(16))
    application_id: Mapped[int | None] = mapped_column(
        ForeignKey("oauth_apps.id", ondelete="SET NULL")
    )
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    edited_at: Mapped[dt.datetime | None]
    replies_count: Mapped[int] = mapped_column(default=0)
    reblogs_count: Mapped[int] = mapped_column(default=0)
    favourites_count: Mapped[int] = mapped_column(default=0)
    quotes_count: Mapped[int] = mapped_column(default=0)

    __table_args__ = (
        Index("ix_statuses_account_id_id", "account_id", "id"),
        Index("ix_statuses_in_reply_to_id", "in_reply_to_id"),
        Index("ix_statuses_reblog_of_id", "reblog_of_id"),
        Index("ix_statuses_visibility_id", "visibility", "id"),
    )


class StatusEdit(Base):
    """One earlier (or the current) version of an edited status, for its history."""

    __tablename__ = "status_edits"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    status_id: Mapped[int] = mapped_column(
        ForeignKey("statuses.id", ondelete="CASCADE"), index=True
    )
    text: Mapped[str] = mapped_column(Text)
    content_html: Mapped[str] = mapped_column(Text)
    spoiler_text: Mapped[str] = mapped_column(Text, default="")
    sensitive: Mapped[bool] = mapped_column(default=False)
    media_ids: Mapped[list[int]] = mapped_column(JSON, default=list)
    poll_options: Mapped[list[str] | None] = mapped_column(JSON)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class Mention(Base):
    __tablename__ = "mentions"

    status_id: Mapped[int] = mapped_column(
        ForeignKey("statuses.id", ondelete="CASCADE"), primary_key=True
    )
    account_id: Mapped[int] = mapped_column(
        ForeignKey("accounts.id", ondelete="CASCADE"), primary_key=True, index=True
    )


class Tag(Base):
    __tablename__ = "tags"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    name: Mapped[str] = mapped_column(String(100))  # as first written
    name_key: Mapped[str] = mapped_column(String(100), unique=True)  # lower-cased
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    last_status_at: Mapped[dt.datetime | None]


class StatusTag(Base):
    __tablename__ = "status_tags"

    tag_id: Mapped[int] = mapped_column(ForeignKey("tags.id", ondelete="CASCADE"), primary_key=True)
    status_id: Mapped[int] = mapped_column(
        ForeignKey("statuses.id", ondelete="CASCADE"), primary_key=True, index=True
    )


class TagFollow(Base):
    __tablename__ = "tag_follows"

    account_id: Mapped[int] = mapped_column(
        ForeignKey("accounts.id", ondelete="CASCADE"), primary_key=True
    )
    tag_id: Mapped[int] = mapped_column(ForeignKey("tags.id", ondelete="CASCADE"), primary_key=True)


class Favourite(Base):
    __tablename__ = "favourites"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    status_id: Mapped[int] = mapped_column(
        ForeignKey("statuses.id", ondelete="CASCADE"), index=True
    )
    __table_args__ = (UniqueConstraint("account_id", "status_id"),)


class Bookmark(Base):
    __tablename__ = "bookmarks"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    status_id: Mapped[int] = mapped_column(
        ForeignKey("statuses.id", ondelete="CASCADE"), index=True
    )
    __table_args__ = (UniqueConstraint("account_id", "status_id"),)


class Pin(Base):
    __tablename__ = "pins"

    account_id: Mapped[int] = mapped_column(
        ForeignKey("accounts.id", ondelete="CASCADE"), primary_key=True
    )
    status_id: Mapped[int] = mapped_column(
        ForeignKey("statuses.id", ondelete="CASCADE"), primary_key=True
    )
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class Poll(Base):
    __tablename__ = "polls"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    status_id: Mapped[int] = mapped_column(
        ForeignKey("statuses.id", ondelete="CASCADE"), unique=True
    )
    options: Mapped[list[str]] = mapped_column(JSON)
    # Votes per option, kept in step with poll_votes inside the voting transaction.
    option_votes: Mapped[list[int]] = mapped_column(JSON)
    multiple: Mapped[bool] = mapped_column(default=False)
    hide_totals: Mapped[bool] = mapped_column(default=False)
    expires_at: Mapped[dt.datetime | None]
    votes_count: Mapped[int] = mapped_column(default=0)
    voters_count: Mapped[int] = mapped_column(default=0)
    ended_notified: Mapped[bool] = mapped_column(default=False)


class PollVote(Base):
    __tablename__ = "poll_votes"

    poll_id: Mapped[int] = mapped_column(
        ForeignKey("polls.id", ondelete="CASCADE"), primary_key=True
    )
    account_id: Mapped[int] = mapped_column(
        ForeignKey("accounts.id", ondelete="CASCADE"), primary_key=True
    )
    choice: Mapped[int] = mapped_column(primary_key=True)


class IdempotencyKey(Base):
    """A status created under an ``Idempotency-Key`` header: a retry returns the same status."""

    __tablename__ = "idempotency_keys"

    account_id: Mapped[int] = mapped_column(
        ForeignKey("accounts.id", ondelete="CASCADE"), primary_key=True
    )
    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    status_id: Mapped[int | None] = mapped_column(ForeignKey("statuses.id", ondelete="CASCADE"))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow, index=True)
    payload: Mapped[dict[str, Any] | None] = mapped_column(JSON)
