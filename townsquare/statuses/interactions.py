"""Reblogs, favourites, bookmarks and pins. Each is idempotent: doing it twice is doing it once."""

from __future__ import annotations

from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from townsquare.accounts.models import Account
from townsquare.api.errors import ApiError
from townsquare.db.base import utcnow
from townsquare.ids import new_id
from townsquare.privacy import OPEN_VISIBILITIES
from townsquare.statuses.effects import announce_delete, announce_new_status, notify_about
from townsquare.statuses.lookup import decremented, insert_once, original_of, visible_status
from townsquare.statuses.models import Bookmark, Favourite, Pin, Status

MAX_PINS = 5


async def _target(session: AsyncSession, viewer_id: int, status_id: int) -> Status:
    status = await visible_status(session, viewer_id, status_id)
    return await original_of(session, status)


async def _existing_reblog(session: AsyncSession, account_id: int, status_id: int) -> Status | None:
    found: Status | None = await session.scalar(
        select(Status).where(Status.account_id == account_id, Status.reblog_of_id == status_id)
    )
    return found


async def reblog(
    session: AsyncSession,
    actor: Account,
    status_id: int,
    visibility: str | None = None,
    application_id: int | None = None,
) -> Status:
    original = await _target(session, actor.id, status_id)
    if original.visibility == "direct" or (
        original.visibility == "private" and original.account_id != actor.id
    ):
        raise ApiError(403, "This action is not allowed")
    existing = await _existing_reblog(session, actor.id, original.id)
    if existing is not None:
        return existing
    if original.visibility == "private":
        chosen = "private"
    else:
        chosen = visibility or actor.default_visibility
        if chosen == "direct":
            chosen = "private"
    boost = Status(
        id=new_id(),
        account_id=actor.id,
        reblog_of_id=original.id,
        thread_id=None,
        visibility=chosen,
        application_id=application_id,
        created_at=utcnow(),
    )
    session.add(boost)
    await session.flush()
    await session.execute(
        update(Status)
        .where(Status.id == original.id)
        .values(reblogs_count=Status.reblogs_count + 1)
    )
    await session.execute(
        update(Account)
        .where(Account.id == actor.id)
        .values(statuses_count=Account.statuses_count + 1, last_status_at=boost.created_at)
    )
    await notify_about(session, original, [original.account_id], "reblog", from_account_id=actor.id)
    await announce_new_status(session, boost, [])
    await session.refresh(original)
    return boost


async def unreblog(session: AsyncSession, actor: Account, status_id: int) -> Status:
    original = await _target(session, actor.id, status_id)
    existing = await _existing_reblog(session, actor.id, original.id)
    if existing is not None:
        await session.delete(existing)
        await session.execute(
            update(Status)
            .where(Status.id == original.id)
            .values(reblogs_count=decremented(Status.reblogs_count))
        )
        await session.execute(
            update(Account)
            .where(Account.id == actor.id)
            .values(statuses_count=decremented(Account.statuses_count))
        )
        announce_delete(session, [existing.id])
        await session.flush()
        await session.refresh(original)
    return original


async def favourite(session: AsyncSession, actor: Account, status_id: int) -> Status:
    status = await _target(session, actor.id, status_id)
    if await insert_once(session, Favourite(id=new_id(), account_id=actor.id, status_id=status.id)):
        await session.execute(
            update(Status)
            .where(Status.id == status.id)
            .values(favourites_count=Status.favourites_count + 1)
        )
        await notify_about(
            session, status, [status.account_id], "favourite", from_account_id=actor.id
        )
        await session.refresh(status)
    return status


async def unfavourite(session: AsyncSession, actor: Account, status_id: int) -> Status:
    status = await _target(session, actor.id, status_id)
    removed = await session.execute(
        delete(Favourite)
        .where(Favourite.account_id == actor.id, Favourite.status_id == status.id)
        .returning(Favourite.id)
    )
    if removed.first() is not None:
        await session.execute(
            update(Status)
            .where(Status.id == status.id)
            .values(favourites_count=decremented(Status.favourites_count))
        )
        await session.refresh(status)
    return status


async def bookmark(session: AsyncSession, actor: Account, status_id: int) -> Status:
    status = await _target(session, actor.id, status_id)
    await insert_once(session, Bookmark(id=new_id(), account_id=actor.id, status_id=status.id))
    return status


async def unbookmark(session: AsyncSession, actor: Account, status_id: int) -> Status:
    status = await _target(session, actor.id, status_id)
    await session.execute(
        delete(Bookmark).where(Bookmark.account_id == actor.id, Bookmark.status_id == status.id)
    )
    return status


async def pin(session: AsyncSession, actor: Account, status_id: int) -> Status:
    status = await visible_status(session, actor.id, status_id)
    if status.account_id != actor.id or status.reblog_of_id is not None:
        raise ApiError(422, "Validation failed: you can only pin your own statuses")
    if status.visibility not in OPEN_VISIBILITIES:
        raise ApiError(422, "Validation failed: only public and unlisted statuses can be pinned")
    if await session.get(Pin, (actor.id, status.id)) is not None:
        return status
    pinned = await session.scalar(
        select(func.count()).select_from(Pin).where(Pin.account_id == actor.id)
    )
    if (pinned or 0) >= MAX_PINS:
        raise ApiError(422, f"Validation failed: you can pin at most {MAX_PINS} statuses")
    await insert_once(session, Pin(account_id=actor.id, status_id=status.id))
    return status


async def unpin(session: AsyncSession, actor: Account, status_id: int) -> Status:
    status = await visible_status(session, actor.id, status_id)
    await session.execute(delete(Pin).where(Pin.account_id == actor.id, Pin.status_id == status.id))
    return status
