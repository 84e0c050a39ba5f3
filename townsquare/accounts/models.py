"""Accounts: the person (or body) behind a profile, with their credentials."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from townsquare.db.base import Base, utcnow

ROLES = ("user", "moderator", "admin")


class Account(Base):
    __tablename__ = "accounts"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    username: Mapped[str] = mapped_column(String(30))
    # Usernames are unique regardless of case; lookups go through this column.
    username_key: Mapped[str] = mapped_column(String(30), unique=True)
    email: Mapped[str | None] = mapped_column(String(320), unique=True)
    password_hash: Mapped[str | None] = mapped_column(String(200))
    display_name: Mapped[str] = mapped_column(String(100), default="")
    note: Mapped[str] = mapped_column(Text, default="")
    note_html: Mapped[str] = mapped_column(Text, default="")
    fields: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    avatar_media_id: Mapped[int | None] = mapped_column(
        ForeignKey("media_attachments.id", ondelete="SET NULL", use_alter=True)
    )
    header_media_id: Mapped[int | None] = mapped_column(
        ForeignKey("media_attachments.id", ondelete="SET NULL", use_alter=True)
    )
    # The stored file names of the avatar and header, kept beside the media ids so rendering an
    # account never needs a second query.
    avatar_file: Mapped[str | None] = mapped_column(String(200))
    header_file: Mapped[str | None] = mapped_column(String(200))
    locked: Mapped[bool] = mapped_column(default=False)
    bot: Mapped[bool] = mapped_column(default=False)
    discoverable: Mapped[bool] = mapped_column(default=True)
    indexable: Mapped[bool] = mapped_column(default=True)
    # Verified / official accounts (public bodies): marked by an admin, favoured by the shield.
    verified: Mapped[bool] = mapped_column(default=False)
    role: Mapped[str] = mapped_column(String(16), default="user")
    locale: Mapped[str] = mapped_column(String(16), default="en")
    default_visibility: Mapped[str] = mapped_column(String(16), default="public")
    default_sensitive: Mapped[bool] = mapped_column(default=False)
    default_language: Mapped[str | None] = mapped_column(String(16))
    suspended_at: Mapped[dt.datetime | None]
    silenced_at: Mapped[dt.datetime | None]
    # Moderation: media forced sensitive; log-in refused (the profile stays visible).
    sensitized_at: Mapped[dt.datetime | None]
    disabled_at: Mapped[dt.datetime | None]
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    last_status_at: Mapped[dt.datetime | None]
    followers_count: Mapped[int] = mapped_column(default=0)
    following_count: Mapped[int] = mapped_column(default=0)
    statuses_count: Mapped[int] = mapped_column(default=0)

    __table_args__ = (
        Index("ix_accounts_created", "created_at"),
        # Every timeline read looks up the suspended accounts.
        Index(
            "ix_accounts_suspended_at",
            "suspended_at",
            sqlite_where=text("suspended_at IS NOT NULL"),
            postgresql_where=text("suspended_at IS NOT NULL"),
        ),
    )

    @property
    def is_moderator(self) -> bool:
        return self.role in ("moderator", "admin")

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"

    @property
    def is_suspended(self) -> bool:
        return self.suspended_at is not None
