"""Editing a status (with its history) and deleting one."""

from __future__ import annotations

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from townsquare.accounts.models import Account
from townsquare.config import Settings
from townsquare.db.base import utcnow
from townsquare.ids import new_id
from townsquare.media.models import MediaAttachment
from townsquare.media.service import attach_media, describe_media, parse_focus
from townsquare.privacy import OPEN_VISIBILITIES
from townsquare.statuses.content import check_length, render_text, write_links
from townsquare.statuses.create import check_body
from townsquare.statuses.effects import announce_delete, announce_edit, notify_about
from townsquare.statuses.lookup import decremented, own_status
from townsquare.statuses.models import Poll, Status, StatusEdit
from townsquare.statuses.polls import check_poll, replace_poll
from townsquare.statuses.schemas import StatusChanges


async def _media_ids(session: AsyncSession, status_id: int) -> list[int]:
    rows = await session.scalars(
        select(MediaAttachment.id)
        .where(MediaAttachment.status_id == status_id)
        .order_by(MediaAttachment.position)
    )
    return list(rows)


async def _snapshot(session: AsyncSession, status: Status) -> StatusEdit:
    poll = await session.scalar(select(Poll).where(Poll.status_id == status.id))
    return StatusEdit(
        id=new_id(),
        status_id=status.id,
        text=status.text,
        content_html=status.content_html,
        spoiler_text=status.spoiler_text,
        sensitive=status.sensitive,
        media_ids=await _media_ids(session, status.id),
        poll_options=list(poll.options) if poll else None,
        created_at=status.edited_at or status.created_at,
    )


async def edit_status(
    session: AsyncSession,
    settings: Settings,
    author: Account,
    status_id: int,
    changes: StatusChanges,
) -> Status:
    status = await own_status(session, author.id, status_id)
    media_ids = changes.media_ids
    if media_ids is None:
        media_ids = await _media_ids(session, status.id)
    check_body(settings, changes.status, media_ids, changes.poll)
    check_length(settings, changes.status, changes.spoiler_text)
    media_changes = {
        change.id: (change.description, parse_focus(change.focus))
        for change in changes.media_attributes
    }
    if changes.poll is not None:
        check_poll(settings, changes.poll)
    rendered = await render_text(session, settings, changes.status)

    has_history = await session.scalar(
        select(StatusEdit.id).where(StatusEdit.status_id == status.id).limit(1)
    )
    if has_history is None:
        # The history shows every version, the original included.
        session.add(await _snapshot(session, status))
    status.text = changes.status
    status.content_html = rendered.html
    status.spoiler_text = changes.spoiler_text.strip()
    if changes.sensitive is not None:
        status.sensitive = changes.sensitive
    status.sensitive = status.sensitive or bool(status.spoiler_text)
    if changes.language is not None:
        status.language = changes.language
    status.edited_at = utcnow()
    added = await write_links(session, status, rendered, replace=True)
    await attach_media(
        session, author.id, status.id, media_ids, max_attachments=settings.max_media_attachments
    )
    if media_changes:
        # Only the status's own images; ids of anything else are ignored, as Mastodon does.
        attached = await session.scalars(
            select(MediaAttachment).where(
                MediaAttachment.status_id == status.id,
                MediaAttachment.id.in_(list(media_changes)),
            )
        )
        for media in attached:
            description, focus = media_changes[media.id]
            describe_media(media, description=description, focus=focus)
    await replace_poll(session, status, changes.poll)
    await session.flush()
    session.add(await _snapshot(session, status))

    await notify_about(session, status, added, "mention")
    rebloggers = await session.scalars(
        select(Status.account_id).where(Status.reblog_of_id == status.id)
    )
    await notify_about(session, status, list(rebloggers), "update")
    await announce_edit(session, status)
    return status


async def history(session: AsyncSession, status: Status) -> list[StatusEdit]:
    edits = list(
        await session.scalars(
            select(StatusEdit).where(StatusEdit.status_id == status.id).order_by(StatusEdit.id)
        )
    )
    return edits or [await _snapshot(session, status)]


async def delete_status(session: AsyncSession, author: Account, status_id: int) -> Status:
    """Remove the author's status and the reblogs of it; the caller renders it first."""
    status = await own_status(session, author.id, status_id)
    reblogs = list(await session.scalars(select(Status).where(Status.reblog_of_id == status.id)))
    if status.visibility != "direct":
        await session.execute(
            update(Account)
            .where(Account.id == author.id)
            .values(statuses_count=decremented(Account.statuses_count))
        )
    for boost in reblogs:
        await session.execute(
            update(Account)
            .where(Account.id == boost.account_id)
            .values(statuses_count=decremented(Account.statuses_count))
        )
    if status.in_reply_to_id is not None and status.visibility in OPEN_VISIBILITIES:
        await session.execute(
            update(Status)
            .where(Status.id == status.in_reply_to_id)
            .values(replies_count=decremented(Status.replies_count))
        )
    if status.quote_of_id is not None:
        await session.execute(
            update(Status)
            .where(Status.id == status.quote_of_id)
            .values(quotes_count=decremented(Status.quotes_count))
        )
    announce_delete(session, [status.id, *(boost.id for boost in reblogs)])
    await session.execute(
        delete(Status)
        .where(Status.id.in_([status.id, *(boost.id for boost in reblogs)]))
        .execution_options(synchronize_session=False)
    )
    return status
