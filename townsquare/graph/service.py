"""Follows, follow requests, blocks and mutes: who hears from whom.

Follower and following counts on accounts move with single ``UPDATE ... SET n = n + 1`` statements,
and only when the follow row was really inserted or deleted, so concurrent requests keep them exact.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import ColumnElement, and_, delete, exists, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from townsquare.accounts.models import Account
from townsquare.api.errors import ApiError, forbidden, not_found
from townsquare.db.base import utcnow
from townsquare.graph.models import AccountNote, Block, Follow, FollowRequest, Mute
from townsquare.graph.sql import insert_or_ignore, upsert
from townsquare.ids import new_id
from townsquare.notifications.models import Notification
from townsquare.notifications.service import notify
from townsquare.statuses.models import Status
from townsquare.timelines.fanout import enqueue_backfill
from townsquare.timelines.models import HomeFeedEntry

MAX_NOTE = 2000


@dataclass(frozen=True)
class FollowOptions:
    """What a follower asks for; ``None`` leaves an existing follow's setting as it is."""

    reblogs: bool | None = None
    notify: bool | None = None
    languages: list[str] | None = None


async def follower_ids(session: AsyncSession, account_id: int) -> list[int]:
    rows = await session.scalars(
        select(Follow.account_id).where(Follow.target_account_id == account_id)
    )
    return list(rows)


async def following_ids(session: AsyncSession, account_id: int) -> list[int]:
    rows = await session.scalars(
        select(Follow.target_account_id).where(Follow.account_id == account_id)
    )
    return list(rows)


async def is_following(session: AsyncSession, follower_id: int, target_id: int) -> bool:
    found = await session.scalar(
        select(Follow.id).where(
            Follow.account_id == follower_id, Follow.target_account_id == target_id
        )
    )
    return found is not None


async def is_blocked_either_way(session: AsyncSession, a: int, b: int) -> bool:
    found = await session.scalar(
        select(Block.id).where(
            or_(
                and_(Block.account_id == a, Block.target_account_id == b),
                and_(Block.account_id == b, Block.target_account_id == a),
            )
        )
    )
    return found is not None


def mute_in_force(now: dt.datetime | None = None) -> ColumnElement[bool]:
    """Mutes with a duration stop counting once it has passed."""
    return or_(Mute.expires_at.is_(None), Mute.expires_at > (now or utcnow()))


async def is_muting(
    session: AsyncSession, account_id: int, target_id: int, *, notifications: bool = False
) -> bool:
    query = select(Mute.id).where(
        Mute.account_id == account_id, Mute.target_account_id == target_id, mute_in_force()
    )
    if notifications:
        query = query.where(Mute.hide_notifications.is_(True))
    return await session.scalar(query) is not None


async def find_target(session: AsyncSession, target_id: int) -> Account:
    """The account acted upon; suspended accounts are gone as far as others can tell."""
    target = await session.get(Account, target_id)
    if target is None or target.suspended_at is not None:
        raise not_found()
    return target


async def _move_counts(session: AsyncSession, follower_id: int, target_id: int, delta: int) -> None:
    await session.execute(
        update(Account)
        .where(Account.id == follower_id)
        .values(following_count=Account.following_count + delta)
        .execution_options(synchronize_session=False)
    )
    await session.execute(
        update(Account)
        .where(Account.id == target_id)
        .values(followers_count=Account.followers_count + delta)
        .execution_options(synchronize_session=False)
    )


async def clear_home_feed(session: AsyncSession, reader_id: int, author_id: int) -> None:
    """Take ``author_id``'s statuses (and reblogs) out of ``reader_id``'s home timeline."""
    await session.execute(
        delete(HomeFeedEntry)
        .where(
            HomeFeedEntry.account_id == reader_id,
            HomeFeedEntry.status_id.in_(select(Status.id).where(Status.account_id == author_id)),
        )
        .execution_options(synchronize_session=False)
    )


async def _forget_notification(
    session: AsyncSession, recipient_id: int, sender_id: int, kind: str
) -> None:
    await session.execute(
        delete(Notification)
        .where(
            Notification.account_id == recipient_id,
            Notification.from_account_id == sender_id,
            Notification.type == kind,
        )
        .execution_options(synchronize_session=False)
    )


async def _create_follow(
    session: AsyncSession,
    follower_id: int,
    target_id: int,
    *,
    show_reblogs: bool,
    notify_posts: bool,
    languages: list[str] | None,
) -> bool:
    inserted = await insert_or_ignore(
        session,
        Follow,
        {
            "id": new_id(),
            "account_id": follower_id,
            "target_account_id": target_id,
            "show_reblogs": show_reblogs,
            "notify": notify_posts,
            "languages": languages,
            "created_at": utcnow(),
        },
        ["account_id", "target_account_id"],
    )
    if inserted:
        await _move_counts(session, follower_id, target_id, +1)
        enqueue_backfill(session, follower_id, target_id)
    return inserted


async def _drop_follow(session: AsyncSession, follower_id: int, target_id: int) -> bool:
    removed = (
        await session.execute(
            delete(Follow)
            .where(Follow.account_id == follower_id, Follow.target_account_id == target_id)
            .returning(Follow.id)
            .execution_options(synchronize_session=False)
        )
    ).first()
    if removed is None:
        return False
    await _move_counts(session, follower_id, target_id, -1)
    await clear_home_feed(session, follower_id, target_id)
    await _forget_notification(session, target_id, follower_id, "follow")
    return True


async def _drop_follow_request(session: AsyncSession, requester_id: int, target_id: int) -> bool:
    removed = (
        await session.execute(
            delete(FollowRequest)
            .where(
                FollowRequest.account_id == requester_id,
                FollowRequest.target_account_id == target_id,
            )
            .returning(FollowRequest.id)
            .execution_options(synchronize_session=False)
        )
    ).first()
    await _forget_notification(session, target_id, requester_id, "follow_request")
    return removed is not None


async def follow(
    session: AsyncSession, actor_id: int, target_id: int, options: FollowOptions
) -> None:
    """Follow ``target_id``, or ask to when the account is locked. Repeating it only updates
    the options."""
    if actor_id == target_id:
        raise forbidden("You cannot follow yourself")
    target = await find_target(session, target_id)
    if await is_blocked_either_way(session, actor_id, target_id):
        raise forbidden()

    existing = await session.scalar(
        select(Follow).where(Follow.account_id == actor_id, Follow.target_account_id == target_id)
    )
    if existing is not None:
        if options.reblogs is not None:
            existing.show_reblogs = options.reblogs
        if options.notify is not None:
            existing.notify = options.notify
        if options.languages is not None:
            existing.languages = options.languages or None
        return

    if target.locked:
        request = await session.scalar(
            select(FollowRequest).where(
                FollowRequest.account_id == actor_id, FollowRequest.target_account_id == target_id
            )
        )
        if request is not None:
            if options.reblogs is not None:
                request.show_reblogs = options.reblogs
            if options.notify is not None:
                request.notify = options.notify
            return
        inserted = await insert_or_ignore(
            session,
            FollowRequest,
            {
                "id": new_id(),
                "account_id": actor_id,
                "target_account_id": target_id,
                "show_reblogs": True if options.reblogs is None else options.reblogs,
                "notify": bool(options.notify),
                "created_at": utcnow(),
            },
            ["account_id", "target_account_id"],
        )
        if inserted:
            await notify(
                session, recipient_id=target_id, from_account_id=actor_id, type="follow_request"
            )
        return

    created = await _create_follow(
        session,
        actor_id,
        target_id,
        show_reblogs=True if options.reblogs is None else options.reblogs,
        notify_posts=bool(options.notify),
        languages=options.languages or None,
    )
    if created:
        await notify(session, recipient_id=target_id, from_account_id=actor_id, type="follow")


async def unfollow(session: AsyncSession, actor_id: int, target_id: int) -> None:
    """Stop following, or withdraw a pending request. Unfollowing a stranger changes nothing."""
    await find_target(session, target_id)
    await _drop_follow(session, actor_id, target_id)
    await _drop_follow_request(session, actor_id, target_id)


async def remove_follower(session: AsyncSession, actor_id: int, follower_id: int) -> None:
    await find_target(session, follower_id)
    await _drop_follow(session, follower_id, actor_id)


async def authorize_follow_request(session: AsyncSession, actor_id: int, requester_id: int) -> None:
    request = await session.scalar(
        select(FollowRequest).where(
            FollowRequest.account_id == requester_id, FollowRequest.target_account_id == actor_id
        )
    )
    if request is None:
        raise not_found("Follow request")
    show_reblogs, notify_posts = request.show_reblogs, request.notify
    await _drop_follow_request(session, requester_id, actor_id)
    await _create_follow(
        session,
        requester_id,
        actor_id,
        show_reblogs=show_reblogs,
        notify_posts=notify_posts,
        languages=None,
    )


async def reject_follow_request(session: AsyncSession, actor_id: int, requester_id: int) -> None:
    if not await _drop_follow_request(session, requester_id, actor_id):
        raise not_found("Follow request")


async def block(session: AsyncSession, actor_id: int, target_id: int) -> None:
    """Block: follows and requests both ways end, and neither sees the other's statuses."""
    if actor_id == target_id:
        raise forbidden("You cannot block yourself")
    await find_target(session, target_id)
    await insert_or_ignore(
        session,
        Block,
        {
            "id": new_id(),
            "account_id": actor_id,
            "target_account_id": target_id,
            "created_at": utcnow(),
        },
        ["account_id", "target_account_id"],
    )
    for a, b in ((actor_id, target_id), (target_id, actor_id)):
        await _drop_follow(session, a, b)
        await _drop_follow_request(session, a, b)
        await clear_home_feed(session, a, b)


async def unblock(session: AsyncSession, actor_id: int, target_id: int) -> None:
    await find_target(session, target_id)
    await session.execute(
        delete(Block)
        .where(Block.account_id == actor_id, Block.target_account_id == target_id)
        .execution_options(synchronize_session=False)
    )


async def mute(
    session: AsyncSession,
    actor_id: int,
    target_id: int,
    *,
    hide_notifications: bool = True,
    duration: int = 0,
) -> None:
    """Mute; ``duration`` in seconds (0: until unmuted). Muting again replaces the settings."""
    if actor_id == target_id:
        raise forbidden("You cannot mute yourself")
    if duration < 0:
        raise ApiError(422, "Validation failed: duration must not be negative")
    await find_target(session, target_id)
    expires_at = utcnow() + dt.timedelta(seconds=duration) if duration else None
    await upsert(
        session,
        Mute,
        {
            "id": new_id(),
            "account_id": actor_id,
            "target_account_id": target_id,
            "hide_notifications": hide_notifications,
            "expires_at": expires_at,
            "created_at": utcnow(),
        },
        ["account_id", "target_account_id"],
        {"hide_notifications": hide_notifications, "expires_at": expires_at},
    )
    await clear_home_feed(session, actor_id, target_id)


async def unmute(session: AsyncSession, actor_id: int, target_id: int) -> None:
    await find_target(session, target_id)
    await session.execute(
        delete(Mute)
        .where(Mute.account_id == actor_id, Mute.target_account_id == target_id)
        .execution_options(synchronize_session=False)
    )


async def set_note(session: AsyncSession, actor_id: int, target_id: int, comment: str) -> None:
    """Keep a private note about an account; an empty note removes it."""
    if len(comment) > MAX_NOTE:
        raise ApiError(422, f"Validation failed: comment must be at most {MAX_NOTE} characters")
    await find_target(session, target_id)
    if not comment:
        await session.execute(
            delete(AccountNote)
            .where(AccountNote.account_id == actor_id, AccountNote.target_account_id == target_id)
            .execution_options(synchronize_session=False)
        )
        return
    now = utcnow()
    await upsert(
        session,
        AccountNote,
        {
            "account_id": actor_id,
            "target_account_id": target_id,
            "comment": comment,
            "updated_at": now,
        },
        ["account_id", "target_account_id"],
        {"comment": comment, "updated_at": now},
    )


def blocks_between(viewer_id: int, other: ColumnElement[int]) -> ColumnElement[bool]:
    """True where ``other`` (an account id column) and the viewer block each other either way."""
    return or_(
        exists().where(Block.account_id == viewer_id, Block.target_account_id == other),
        exists().where(Block.account_id == other, Block.target_account_id == viewer_id),
    )


async def existing_account_ids(session: AsyncSession, ids: list[int]) -> set[int]:
    """Which of ``ids`` are accounts others can see (not suspended)."""
    if not ids:
        return set()
    rows = await session.scalars(
        select(Account.id).where(Account.id.in_(ids), Account.suspended_at.is_(None))
    )
    return set(rows)


async def accept_pending_requests(session: AsyncSession, account_id: int) -> int:
    """When an account unlocks, everyone waiting is let in, as Mastodon does; returns how many."""
    requester_ids = list(
        await session.scalars(
            select(FollowRequest.account_id).where(FollowRequest.target_account_id == account_id)
        )
    )
    for requester_id in requester_ids:
        await authorize_follow_request(session, account_id, requester_id)
    return len(requester_ids)
