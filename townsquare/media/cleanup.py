"""Removing uploads nobody used: media never attached to a status, and replaced profile images.

Mastodon keeps unattached uploads for a day; so does this. A row is deleted only if it is still
unattached at the moment of deletion (``RETURNING`` tells which), and only then are its files
removed, so an image attached meanwhile is never lost.
"""

from __future__ import annotations

import asyncio
import datetime as dt

from sqlalchemy import delete, select

from townsquare.accounts.models import Account
from townsquare.db.base import utcnow
from townsquare.jobs.periodic import periodic
from townsquare.media import storage
from townsquare.media.models import MediaAttachment
from townsquare.state import AppState

KEEP_UNATTACHED = dt.timedelta(hours=24)
BATCH = 200


async def remove_unused_media(
    state: AppState, *, older_than: dt.timedelta = KEEP_UNATTACHED
) -> int:
    """Delete unattached, unreferenced media older than ``older_than``; returns how many."""
    cutoff = utcnow() - older_than
    removed = 0
    while True:
        # In batches, so the SQLite writer is never held for long.
        async with state.db.write() as session:
            in_use = (
                select(Account.avatar_media_id)
                .where(Account.avatar_media_id.is_not(None))
                .union(select(Account.header_media_id).where(Account.header_media_id.is_not(None)))
            )
            candidates = list(
                await session.scalars(
                    select(MediaAttachment.id)
                    .where(
                        MediaAttachment.status_id.is_(None),
                        MediaAttachment.created_at < cutoff,
                        MediaAttachment.id.not_in(in_use),
                    )
                    .limit(BATCH)
                )
            )
            if not candidates:
                return removed
            rows = await session.execute(
                delete(MediaAttachment)
                .where(MediaAttachment.id.in_(candidates), MediaAttachment.status_id.is_(None))
                .returning(MediaAttachment.file_name, MediaAttachment.thumb_name)
                .execution_options(synchronize_session=False)
            )
            names = [name for row in rows for name in row]
        await asyncio.to_thread(storage.remove_files, state.settings.media_dir, names)
        removed += len(names) // 2
        if len(candidates) < BATCH:
            return removed


@periodic("media.remove_unused", every_seconds=3600)
async def remove_unused_media_hourly(state: AppState) -> None:
    await remove_unused_media(state)
