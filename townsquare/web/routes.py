"""The web app's router: its pages, its forms and its two static files."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse

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
