"""Receiving an upload: bounded reading, image work off the event loop, a brief write.

The image is decoded and re-encoded in a thread before any write transaction opens, so a slow
upload never holds the (on SQLite, single) writer.
"""

from __future__ import annotations

import asyncio

from starlette.datastructures import UploadFile
from starlette.types import Message, Receive

from townsquare.api.errors import ApiError
from townsquare.media import processing, service, storage
from townsquare.media.models import MediaAttachment
from townsquare.media.processing import ImageRejected, ProcessedImage
from townsquare.state import AppState

READ_CHUNK = 256 * 1024
# Room for the multipart framing and the small text fields around the file.
FORM_OVERHEAD = 64 * 1024


def too_large(max_bytes: int) -> ApiError:
    return ApiError(413, f"File is too large (the limit is {max_bytes // (1024 * 1024)} MB)")


class CappedReceive:
    """Wraps an ASGI ``receive`` and stops the body once it passes ``limit`` bytes.

    Without a Content-Length (chunked uploads) this is what keeps a client from spooling an
    unbounded body to disk.
    """

    def __init__(self, receive: Receive, limit: int) -> None:
        self._receive = receive
        self._limit = limit
        self._seen = 0
        self.exceeded = False

    async def __call__(self) -> Message:
        message = await self._receive()
        if message["type"] == "http.request":
            self._seen += len(message.get("body", b""))
            if self._seen > self._limit:
                self.exceeded = True
                raise too_large(self._limit - FORM_OVERHEAD)
        return message


def check_declared_length(content_length: str | None, max_bytes: int) -> None:
    if content_length is None:
        return
    try:
        declared = int(content_length)
    except ValueError:
        raise ApiError(400, "Content-Length is not a number") from None
    if declared > max_bytes + FORM_OVERHEAD:
        raise too_large(max_bytes)


async def read_upload(upload: UploadFile, max_bytes: int) -> bytes:
    """The uploaded file's bytes, read in chunks and refused once past ``max_bytes``."""
    chunks: list[bytes] = []
    total = 0
    await upload.seek(0)
    while True:
        chunk = await upload.read(READ_CHUNK)
        if not chunk:
            break
        total += len(chunk)
        if total > max_bytes:
            raise too_large(max_bytes)
        chunks.append(chunk)
    if total == 0:
        raise ApiError(422, "Validation failed: file is empty")
    return b"".join(chunks)


async def _process(data: bytes, kind: str | None, max_pixels: int) -> ProcessedImage:
    try:
        if kind is None:
            return await asyncio.to_thread(processing.process_image, data, max_pixels=max_pixels)
        return await asyncio.to_thread(
            processing.process_profile_image, data, kind, max_pixels=max_pixels
        )
    except ImageRejected as exc:
        raise ApiError(422, f"Validation failed: {exc}") from None


async def _store(
    state: AppState,
    account_id: int,
    image: ProcessedImage,
    *,
    description: str | None = None,
    focus: service.Focus | None = None,
    kind: str = "image",
) -> MediaAttachment:
    media_dir = state.settings.media_dir
    names = await asyncio.to_thread(storage.write_files, media_dir, image)
    try:
        async with state.db.write() as session:
            return await service.create_media(
                session, account_id, image, names, description=description, focus=focus, kind=kind
            )
    except BaseException:
        await asyncio.to_thread(storage.remove_files, media_dir, list(names))
        raise


async def save_upload(
    state: AppState,
    account_id: int,
    upload: UploadFile,
    *,
    description: str | None = None,
    focus: service.Focus | None = None,
) -> MediaAttachment:
    """A new, unattached image for ``account_id`` (committed when this returns)."""
    service.check_description(description)
    data = await read_upload(upload, state.settings.max_image_bytes)
    image = await _process(data, None, state.settings.max_image_pixels)
    return await _store(state, account_id, image, description=description, focus=focus)


async def store_profile_image(
    state: AppState, account_id: int, upload: UploadFile, kind: str
) -> MediaAttachment:
    """An avatar (400x400) or header (1500x500) image, committed in its own brief transaction.

    Call it before opening your own write transaction (on SQLite there is one writer), then set
    ``avatar_media_id`` / ``header_media_id`` to the returned row's id. Bad images are a 422.
    """
    if kind not in processing.PROFILE_SIZES:
        raise ValueError(f"unknown profile image kind {kind!r}")
    data = await read_upload(upload, state.settings.max_image_bytes)
    image = await _process(data, kind, state.settings.max_image_pixels)
    return await _store(state, account_id, image, kind=kind)
