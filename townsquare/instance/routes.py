"""The instance API (v1 and v2) and the small documents around it: rules, peers, activity."""

from __future__ import annotations

import asyncio
import io
from typing import Any

from fastapi import APIRouter, Depends, Request, Response
from PIL import Image

from townsquare.api.auth import Viewer, anyone
from townsquare.instance import (
    activity,
    discovery,
    filter_routes,
    filter_v1_routes,
    placeholders,
    wellknown,
)
from townsquare.instance.info import cached_stats, instance_v1, instance_v2
from townsquare.state import app_state

router = APIRouter()
router.include_router(wellknown.router)
router.include_router(discovery.router)
router.include_router(placeholders.router)
router.include_router(filter_routes.router)
router.include_router(filter_v1_routes.router)

THUMBNAIL_SIZE = (1200, 630)
THUMBNAIL_COLOUR = (40, 94, 140)


@router.get("/api/v1/instance")
@router.get("/api/v1/instance/", include_in_schema=False)
async def instance_v1_route(request: Request, _viewer: Viewer = Depends(anyone)) -> dict[str, Any]:
    state = app_state(request)
    return instance_v1(state.settings, await cached_stats(state))


@router.get("/api/v2/instance")
@router.get("/api/v2/instance/", include_in_schema=False)
async def instance_v2_route(request: Request, _viewer: Viewer = Depends(anyone)) -> dict[str, Any]:
    state = app_state(request)
    return instance_v2(state.settings, await cached_stats(state))


@router.get("/api/v1/instance/peers")
async def peers() -> list[str]:
    # Not federated: no other servers are known.
    return []


@router.get("/api/v1/instance/activity")
async def instance_activity(request: Request) -> list[dict[str, str]]:
    return await activity.cached_weekly_activity(app_state(request))


@router.get("/api/v1/instance/rules")
async def rules() -> list[dict[str, Any]]:
    return []


@router.get("/api/v1/instance/domain_blocks")
async def domain_blocks() -> list[dict[str, Any]]:
    return []


@router.get("/api/v1/instance/translation_languages")
async def translation_languages() -> dict[str, list[str]]:
    return {}


@router.get("/api/v1/instance/languages")
async def languages() -> list[dict[str, str]]:
    return [{"code": "en", "name": "English"}]


@router.get("/api/v1/instance/extended_description")
async def extended_description(request: Request) -> dict[str, Any]:
    settings = app_state(request).settings
    content = f"<p>{_escape(settings.instance_description)}</p>"
    return {"updated_at": _epoch_iso(), "content": content}


@router.get("/api/v1/instance/privacy_policy")
async def privacy_policy() -> dict[str, Any]:
    return {"updated_at": _epoch_iso(), "content": ""}


def _epoch_iso() -> str:
    return "1970-01-01T00:00:00.000Z"


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _render_thumbnail() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", THUMBNAIL_SIZE, THUMBNAIL_COLOUR).save(out, "PNG", optimize=True)
    return out.getvalue()


_THUMBNAIL_KEY = "instance.thumbnail"


@router.get("/instance/thumbnail.png", include_in_schema=False)
async def thumbnail(request: Request) -> Response:
    state = app_state(request)
    data = state.extras.get(_THUMBNAIL_KEY)
    if not isinstance(data, bytes):
        data = await asyncio.to_thread(_render_thumbnail)
        state.extras[_THUMBNAIL_KEY] = data
    return Response(
        data, media_type="image/png", headers={"Cache-Control": "public, max-age=86400"}
    )
