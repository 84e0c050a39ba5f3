"""Turning a status's text into what is stored beside it: HTML, mentions and hashtags."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from townsquare.accounts.models import Account
from townsquare.api.errors import ApiError
from townsquare.config import Settings
from townsquare.db.base import utcnow
from townsquare.ids import new_id
from townsquare.statuses.models import Mention, Status, StatusTag, Tag
from townsquare.text import hashtags_in, mentioned_usernames, render_html, status_length

MAX_MENTIONS = 50
MAX_HASHTAGS = 30


@dataclass(frozen=True)
class RenderedText:
    html: str
    mentioned: list[Account]
    tag_names: list[str]


def check_length(settings: Settings, text: str, spoiler_text: str) -> None:
    """Mastodon counts the content warning and the text together, links as 23 characters."""
    if status_length(text) + len(spoiler_text) > settings.max_status_chars:
        raise ApiError(
            422, f"Validation failed: Text character limit of {settings.max_status_chars} exceeded"
        )


async def render_text(session: AsyncSession, settings: Settings, text: str) -> RenderedText:
    usernames = mentioned_usernames(text, settings.domain)
    if len(usernames) > MAX_MENTIONS:
        raise ApiError(422, f"Validation failed: Too many mentions (at most {MAX_MENTIONS})")
    tag_names = hashtags_in(text)
    if len(tag_names) > MAX_HASHTAGS:
        raise ApiError(422, f"Validation failed: Too many hashtags (at most {MAX_HASHTAGS})")
    accounts: list[Account] = []
    if usernames:
        found = {
            account.username_key: account
            for account in await session.scalars(
                select(Account).where(
                    Account.username_key.in_(usernames), Account.suspended_at.is_(None)
                )
            )
        }
        accounts = [found[name] for name in usernames if name in found]
    html = render_html(
        text,
        usernames={account.username_key: account.username for account in accounts},
        local_domain=settings.domain,
        base_url=settings.public_url,
    )
    return RenderedText(html=html, mentioned=accounts, tag_names=tag_names)


async def _tag_ids(session: AsyncSession, names: list[str]) -> list[int]:
    if not names:
        return []
    keys = {name.lower(): name for name in names}
    found = {
        tag.name_key: tag.id
        for tag in await session.scalars(select(Tag).where(Tag.name_key.in_(list(keys))))
    }
    for key, name in keys.items():
        if key in found:
            continue
        # Two statuses may introduce the same new tag at once; the unique key settles it.
        try:
            async with session.begin_nested():
                tag = Tag(id=new_id(), name=name, name_key=key)
                session.add(tag)
            found[key] = tag.id
        except IntegrityError:
            existing = await session.scalar(select(Tag.id).where(Tag.name_key == key))
            assert existing is not None
            found[key] = existing
    return [found[key] for key in keys]


async def write_links(
    session: AsyncSession, status: Status, rendered: RenderedText, *, replace: bool = False
) -> list[int]:
    """Store the status's mentions and hashtags; returns the ids of newly mentioned accounts."""
    already: set[int] = set()
    if replace:
        already = set(
            await session.scalars(select(Mention.account_id).where(Mention.status_id == status.id))
        )
        await session.execute(delete(StatusTag).where(StatusTag.status_id == status.id))
    wanted = [account.id for account in rendered.mentioned]
    added = [account_id for account_id in wanted if account_id not in already]
    session.add_all(Mention(status_id=status.id, account_id=account_id) for account_id in added)
    tag_ids = await _tag_ids(session, rendered.tag_names)
    session.add_all(StatusTag(status_id=status.id, tag_id=tag_id) for tag_id in tag_ids)
    if tag_ids and status.visibility in ("public", "unlisted"):
        for tag in await session.scalars(select(Tag).where(Tag.id.in_(tag_ids))):
            tag.last_status_at = utcnow()
    await session.flush()
    return added
