"""Endpoints apps call on start-up for features this instance does not have.

A 404 here would make many apps show an error or retry forever, so each answers the way a
Mastodon server without that data answers: an empty list, or Mastodon's own "not found".
Writes that cannot be honoured say so with a 422 instead of pretending to succeed.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends

from townsquare.api.auth import Viewer, anyone, user
from townsquare.api.errors import ApiError

router = APIRouter()


@router.get("/api/v1/custom_emojis")
async def custom_emojis(_viewer: Viewer = Depends(anyone)) -> list[dict[str, Any]]:
    return []


@router.get("/api/v1/announcements")
async def announcements(_viewer: Viewer = Depends(user("read"))) -> list[dict[str, Any]]:
    return []


@router.get("/api/v1/featured_tags")
async def featured_tags(_viewer: Viewer = Depends(user("read:accounts"))) -> list[dict[str, Any]]:
    return []


@router.get("/api/v1/featured_tags/suggestions")
async def featured_tag_suggestions(
    _viewer: Viewer = Depends(user("read:accounts")),
) -> list[dict[str, Any]]:
    return []


@router.get("/api/v1/push/subscription")
async def push_subscription(_viewer: Viewer = Depends(user("push"))) -> None:
    raise ApiError(404, "Record not found")


@router.post("/api/v1/push/subscription")
@router.put("/api/v1/push/subscription")
async def subscribe_push(_viewer: Viewer = Depends(user("push"))) -> None:
    raise ApiError(422, "Web Push notifications are not supported; use the streaming API")


@router.delete("/api/v1/push/subscription")
async def unsubscribe_push(_viewer: Viewer = Depends(user("push"))) -> dict[str, Any]:
    return {}
