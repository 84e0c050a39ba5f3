"""Media uploads (v1 and v2), describing and deleting them, and serving the stored files."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import FileResponse
from pydantic import BaseModel, ConfigDict

from townsquare.api.auth import Viewer, user
from townsquare.api.errors import ApiError
from townsquare.api.params import as_id, parse, read_params, upload
from townsquare.media import cleanup as _cleanup  # noqa: F401  (registers the hourly removal)
from townsquare.media import service, storage
from townsquare.media.entities import media_entity
from townsquare.media.uploads import (
    FORM_OVERHEAD,
    CappedReceive,
    check_declared_length,
    save_upload,
    too_large,
)
from townsquare.state import app_state

router = APIRouter()

# Stored names are random and never reused, so a file never changes once written.
IMMUTABLE_CACHE = "public, max-age=31536000, immutable"


class MediaFields(BaseModel):
    model_config = ConfigDict(extra="ignore")

    description: str | None = None
    focus: str | None = None


async def _read_bounded_form(
    bounded: Request, capped: CappedReceive, max_bytes: int
) -> dict[str, Any]:
    try:
        return await read_params(bounded)
    except ApiError:
        if capped.exceeded:
            raise too_large(max_bytes) from None
        raise


@router.post("/api/v1/media")
@router.post("/api/v2/media")
async def upload_media(
    request: Request, viewer: Viewer = Depends(user("write:media"))
) -> dict[str, Any]:
    state = app_state(request)
    account = viewer.require_account()
    max_bytes = state.settings.max_image_bytes
    check_declared_length(request.headers.get("content-length"), max_bytes)
    capped = CappedReceive(request.receive, max_bytes + FORM_OVERHEAD)
    bounded = Request(request.scope, receive=capped)
    try:
        params = await _read_bounded_form(bounded, capped, max_bytes)
        fields = parse(MediaFields, params)
        focus = service.parse_focus(fields.focus)
        service.check_description(fields.description)
        file = upload(params, "file")
        if file is None:
            raise ApiError(422, "Validation failed: file is missing")
        media = await save_upload(
            state, account.id, file, description=fields.description, focus=focus
        )
    finally:
        # Closes the spooled upload files of the form read through ``bounded``.
        await bounded.close()
    return media_entity(media, state.settings)


@router.get("/api/v1/media/{media_id}")
async def show_media(
    media_id: str, request: Request, viewer: Viewer = Depends(user("write:media"))
) -> dict[str, Any]:
    state = app_state(request)
    account = viewer.require_account()
    async with state.db.read() as session:
        media = await service.own_media(session, account.id, as_id(media_id))
    return media_entity(media, state.settings)


@router.put("/api/v1/media/{media_id}")
async def update_media(
    media_id: str, request: Request, viewer: Viewer = Depends(user("write:media"))
) -> dict[str, Any]:
    state = app_state(request)
    account = viewer.require_account()
    fields = parse(MediaFields, await read_params(request))
    focus = service.parse_focus(fields.focus)
    service.check_description(fields.description)
    async with state.db.write() as session:
        media = await service.own_media(session, account.id, as_id(media_id))
        if media.status_id is not None:
            # A posted image changes with an edit of its status (media_attributes), which
            # keeps the edit history and tells every reader's cache.
            raise ApiError(
                422, "Media attachment is currently used by a status; edit the status instead"
            )
        service.describe_media(media, description=fields.description, focus=focus)
    return media_entity(media, state.settings)


@router.delete("/api/v1/media/{media_id}")
async def delete_media(
    media_id: str, request: Request, viewer: Viewer = Depends(user("write:media"))
) -> dict[str, Any]:
    state = app_state(request)
    account = viewer.require_account()
    async with state.db.write() as session:
        media = await service.own_media(session, account.id, as_id(media_id))
        entity = media_entity(media, state.settings)
        names = await service.delete_media(session, media)
    await asyncio.to_thread(storage.remove_files, state.settings.media_dir, names)
    return entity


@router.get("/media/{name}")
async def serve_media(name: str, request: Request) -> FileResponse:
    media_dir = app_state(request).settings.media_dir
    path = await asyncio.to_thread(storage.served_path, media_dir, name)
    if path is None:
        raise ApiError(404, "Record not found")
    return FileResponse(
        path,
        media_type=storage.content_type_for(name),
        headers={"Cache-Control": IMMUTABLE_CACHE, "X-Content-Type-Options": "nosniff"},
    )
