"""Media rows: creating, finding, describing, attaching to statuses. No web framework here."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from townsquare.api.errors import ApiError
from townsquare.ids import new_id
from townsquare.media.models import MediaAttachment
from townsquare.media.processing import ProcessedImage

if TYPE_CHECKING:
    from starlette.datastructures import UploadFile

    from townsquare.state import AppState

MAX_DESCRIPTION = 1500


@dataclass(frozen=True)
class Focus:
    x: float
    y: float


def check_description(description: str | None) -> str | None:
    if description is not None and len(description) > MAX_DESCRIPTION:
        raise ApiError(
            422, f"Validation failed: description must be at most {MAX_DESCRIPTION} characters"
        )
    return description


def parse_focus(value: str | None) -> Focus | None:
    """``"x,y"`` with both in -1..1 (Mastodon's focal point), or None when not given."""
    if value is None or value == "":
        return None
    parts = value.split(",")
    try:
        if len(parts) != 2:
            raise ValueError
        x, y = float(parts[0]), float(parts[1])
    except ValueError:
        raise ApiError(
            422, "Validation failed: focus must be two numbers, as in 0.5,-0.25"
        ) from None
    if not (-1.0 <= x <= 1.0 and -1.0 <= y <= 1.0):
        raise ApiError(422, "Validation failed: focus coordinates must be between -1 and 1")
    return Focus(x, y)


async def create_media(
    session: AsyncSession,
    account_id: int,
    image: ProcessedImage,
    file_names: tuple[str, str],
    *,
    description: str | None = None,
    focus: Focus | None = None,
    kind: str = "image",
) -> MediaAttachment:
    """``kind`` is ``image`` for status media, ``avatar`` or ``header`` for profile images
    (which can never be attached to a status)."""
    media = MediaAttachment(
        id=new_id(),
        account_id=account_id,
        type=kind,
        content_type=image.content_type,
        file_name=file_names[0],
        thumb_name=file_names[1],
        file_size=len(image.original.data),
        width=image.original.width,
        height=image.original.height,
        thumb_width=image.small.width,
        thumb_height=image.small.height,
        blurhash=image.blurhash,
        description=check_description(description),
        focus_x=focus.x if focus else 0.0,
        focus_y=focus.y if focus else 0.0,
    )
    session.add(media)
    await session.flush()
    return media


async def own_media(session: AsyncSession, account_id: int, media_id: int) -> MediaAttachment:
    """The account's own media; someone else's is indistinguishable from a missing one."""
    media = await session.get(MediaAttachment, media_id)
    if media is None or media.account_id != account_id or media.type != "image":
        raise ApiError(404, "Record not found")
    return media


def describe_media(
    media: MediaAttachment, *, description: str | None, focus: Focus | None
) -> MediaAttachment:
    """Change what was given; leave the rest as it was."""
    if description is not None:
        media.description = check_description(description)
    if focus is not None:
        media.focus_x, media.focus_y = focus.x, focus.y
    return media


async def delete_media(session: AsyncSession, media: MediaAttachment) -> list[str]:
    """Delete unattached media; returns the file names to remove once the deletion commits."""
    if media.status_id is not None:
        raise ApiError(422, "Media attachment is currently used by a status")
    names = [media.file_name, media.thumb_name]
    await session.delete(media)
    await session.flush()
    return names


async def attach_media(
    session: AsyncSession,
    account_id: int,
    status_id: int,
    media_ids: list[int],
    *,
    max_attachments: int = 4,
) -> list[MediaAttachment]:
    """Attach the account's media to a status, in the order given.

    Each id must be the account's own media, not attached to another status; anything else is a
    422 before anything changes. Media on this status that is no longer listed (an edit that
    drops an image) is detached.
    """
    wanted = list(dict.fromkeys(media_ids))
    if len(wanted) > max_attachments:
        raise ApiError(422, f"Validation failed: a status can have at most {max_attachments} media")
    found = {
        media.id: media
        for media in (
            await session.scalars(select(MediaAttachment).where(MediaAttachment.id.in_(wanted)))
        )
    }
    for media_id in wanted:
        media = found.get(media_id)
        if media is None or media.account_id != account_id or media.type != "image":
            raise ApiError(422, f"Validation failed: media {media_id} was not found")
        if media.status_id is not None and media.status_id != status_id:
            raise ApiError(
                422, f"Validation failed: media {media_id} is attached to another status"
            )
    current = await session.scalars(
        select(MediaAttachment).where(MediaAttachment.status_id == status_id)
    )
    for media in current:
        if media.id not in found:
            media.status_id = None
    attached = []
    for position, media_id in enumerate(wanted):
        media = found[media_id]
        media.status_id = status_id
        media.position = position
        attached.append(media)
    await session.flush()
    return attached


async def media_for_statuses(
    session: AsyncSession, status_ids: Iterable[int]
) -> dict[int, list[MediaAttachment]]:
    """Each status's media in attachment order; statuses without media are absent."""
    ids = list(set(status_ids))
    result: dict[int, list[MediaAttachment]] = {}
    if not ids:
        return result
    rows = await session.scalars(
        select(MediaAttachment)
        .where(MediaAttachment.status_id.in_(ids))
        .order_by(MediaAttachment.status_id, MediaAttachment.position)
    )
    for media in rows:
        assert media.status_id is not None
        result.setdefault(media.status_id, []).append(media)
    return result


async def store_profile_image(
    state: AppState, account_id: int, upload: UploadFile, kind: str
) -> MediaAttachment:
    """See :func:`townsquare.media.uploads.store_profile_image` (kept here for callers)."""
    from townsquare.media.uploads import store_profile_image as store

    return await store(state, account_id, upload, kind)
