"""The Relationship entity: how the viewer and each other account stand towards each other."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from townsquare.accounts.entities import iso_time
from townsquare.graph.models import AccountNote, Block, Follow, FollowRequest, Mute
from townsquare.graph.service import mute_in_force


async def render_relationships(
    session: AsyncSession, viewer_id: int, target_ids: Sequence[int]
) -> list[dict[str, Any]]:
    """One Relationship per id, in the order asked, with a fixed number of queries."""
    ids = list(dict.fromkeys(target_ids))
    if not ids:
        return []
    following = {
        row.target_account_id: row
        for row in await session.scalars(
            select(Follow).where(Follow.account_id == viewer_id, Follow.target_account_id.in_(ids))
        )
    }
    followed_by = set(
        await session.scalars(
            select(Follow.account_id).where(
                Follow.target_account_id == viewer_id, Follow.account_id.in_(ids)
            )
        )
    )
    requested = {
        row.target_account_id: row
        for row in await session.scalars(
            select(FollowRequest).where(
                FollowRequest.account_id == viewer_id, FollowRequest.target_account_id.in_(ids)
            )
        )
    }
    requested_by = set(
        await session.scalars(
            select(FollowRequest.account_id).where(
                FollowRequest.target_account_id == viewer_id, FollowRequest.account_id.in_(ids)
            )
        )
    )
    blocking = set(
        await session.scalars(
            select(Block.target_account_id).where(
                Block.account_id == viewer_id, Block.target_account_id.in_(ids)
            )
        )
    )
    blocked_by = set(
        await session.scalars(
            select(Block.account_id).where(
                Block.target_account_id == viewer_id, Block.account_id.in_(ids)
            )
        )
    )
    muting = {
        row.target_account_id: row
        for row in await session.scalars(
            select(Mute).where(
                Mute.account_id == viewer_id, Mute.target_account_id.in_(ids), mute_in_force()
            )
        )
    }
    notes = {
        row.target_account_id: row.comment
        for row in await session.scalars(
            select(AccountNote).where(
                AccountNote.account_id == viewer_id, AccountNote.target_account_id.in_(ids)
            )
        )
    }

    result = []
    for target_id in ids:
        follow = following.get(target_id)
        request = requested.get(target_id)
        mute = muting.get(target_id)
        # A pending request already carries the options the follow will get.
        settings = follow or request
        result.append(
            {
                "id": str(target_id),
                "following": follow is not None,
                "showing_reblogs": settings.show_reblogs if settings else False,
                "notifying": settings.notify if settings else False,
                "languages": (follow.languages if follow else None),
                "followed_by": target_id in followed_by,
                "blocking": target_id in blocking,
                "blocked_by": target_id in blocked_by,
                "muting": mute is not None,
                "muting_notifications": bool(mute and mute.hide_notifications),
                "muting_expires_at": iso_time(mute.expires_at)
                if mute and mute.expires_at
                else None,
                "requested": request is not None,
                "requested_by": target_id in requested_by,
                "domain_blocking": False,
                "endorsed": False,
                "note": notes.get(target_id, ""),
            }
        )
    return result
