"""Changing one's own profile: display name, bio, metadata fields and posting defaults."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from townsquare.accounts.models import Account
from townsquare.config import Settings
from townsquare.db.base import utcnow
from townsquare.text import mentioned_usernames, render_html

MAX_DISPLAY_NAME = 100
MAX_NOTE = 500
MAX_FIELDS = 4
MAX_FIELD_NAME = 255
MAX_FIELD_VALUE = 255
VISIBILITIES = ("public", "unlisted", "private")


@dataclass(frozen=True)
class ProfileField:
    name: str
    value: str


@dataclass(frozen=True)
class ProfileChanges:
    """What the owner asked to change; None leaves a setting as it is."""

    display_name: str | None = None
    note: str | None = None
    locked: bool | None = None
    bot: bool | None = None
    discoverable: bool | None = None
    indexable: bool | None = None
    fields: list[ProfileField] | None = None
    privacy: str | None = None
    sensitive: bool | None = None
    language: str | None = None
    avatar_media_id: int | None = None
    avatar_file: str | None = None
    header_media_id: int | None = None
    header_file: str | None = None


async def _existing_usernames(
    session: AsyncSession, settings: Settings, text: str
) -> dict[str, str]:
    wanted = set(mentioned_usernames(text, settings.domain))
    if not wanted:
        return {}
    rows = await session.execute(
        select(Account.username_key, Account.username).where(
            Account.username_key.in_(wanted), Account.suspended_at.is_(None)
        )
    )
    return {key: username for key, username in rows}


async def render_profile_text(
    session: AsyncSession, settings: Settings, text: str, *, inline: bool = False
) -> str:
    """A bio (paragraphs, line breaks, links, mentions) or, ``inline``, a field value."""
    if inline:
        text = " ".join(text.split())
    html = render_html(
        text,
        usernames=await _existing_usernames(session, settings, text),
        local_domain=settings.domain,
        base_url=settings.public_url,
    )
    if inline and html.startswith("<p>") and html.endswith("</p>"):
        html = html[3:-4]
    return html


async def _rendered_fields(
    session: AsyncSession, settings: Settings, fields: list[ProfileField]
) -> list[dict[str, Any]]:
    return [
        {
            "name": field.name,
            "value": field.value,
            "value_html": await render_profile_text(session, settings, field.value, inline=True),
        }
        for field in fields
    ]


async def update_profile(
    session: AsyncSession, settings: Settings, account: Account, changes: ProfileChanges
) -> Account:
    """Apply ``changes`` (already validated by the caller's schema) to ``account``."""
    if changes.display_name is not None:
        account.display_name = changes.display_name
    if changes.note is not None:
        account.note = changes.note
        account.note_html = await render_profile_text(session, settings, changes.note)
    for name in ("locked", "bot", "discoverable", "indexable"):
        value = getattr(changes, name)
        if value is not None:
            setattr(account, name, value)
    if changes.fields is not None:
        account.fields = await _rendered_fields(session, settings, changes.fields)
    if changes.privacy is not None:
        account.default_visibility = changes.privacy
    if changes.sensitive is not None:
        account.default_sensitive = changes.sensitive
    if changes.language is not None:
        account.default_language = changes.language or None
    if changes.avatar_media_id is not None:
        account.avatar_media_id = changes.avatar_media_id
        account.avatar_file = changes.avatar_file
    if changes.header_media_id is not None:
        account.header_media_id = changes.header_media_id
        account.header_file = changes.header_file
    account.updated_at = utcnow()
    await session.flush()
    return account
