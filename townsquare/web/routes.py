"""The web app's router: its pages, its forms and its two static files."""

from __future__ import annotations

import io
from functools import cache
from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse, Response
from PIL import Image

from townsquare.api.errors import not_found
from townsquare.web import (
    account_routes,
    auth_routes,
    inbox_routes,
    moderation_routes,
    status_routes,
    timeline_routes,
)

STATIC = Path(__file__).parent / "static"
# What accounts without their own avatar or header show (the URLs account entities give).
PLACEHOLDERS = {
    "avatar.png": ((400, 400), (136, 153, 166)),
    "header.png": ((1500, 500), (200, 211, 220)),
}
STATIC_FILES = {
    "app.css": "text/css; charset=utf-8",
    "app.js": "text/javascript; charset=utf-8",
}

router = APIRouter(include_in_schema=False)
for module in (
    auth_routes,
    status_routes,
    account_routes,
    inbox_routes,
    moderation_routes,
    timeline_routes,
):
    router.include_router(module.router)


@router.get("/static/web/{name}")
async def static_file(name: str) -> FileResponse:
    media_type = STATIC_FILES.get(name)
    if media_type is None:
        raise not_found("File")
    return FileResponse(
        STATIC / name, media_type=media_type, headers={"Cache-Control": "public, max-age=300"}
    )


@cache
def placeholder_png(name: str) -> bytes:
    size, colour = PLACEHOLDERS[name]
    buffer = io.BytesIO()
    Image.new("RGB", size, colour).save(buffer, "PNG", optimize=True)
    return buffer.getvalue()


@router.get("/static/{name}")
async def placeholder(name: str) -> Response:
    if name not in PLACEHOLDERS:
        raise not_found("File")
    return Response(
        placeholder_png(name),
        media_type="image/png",
        headers={"Cache-Control": "public, max-age=86400"},
    )
