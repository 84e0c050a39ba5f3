"""The Mastodon ``MediaAttachment`` entity."""

from __future__ import annotations

from typing import Any

from townsquare.config import Settings
from townsquare.media.models import MediaAttachment


def media_file_url(settings: Settings, file_name: str) -> str:
    """Public URL of a stored media file (also used for avatars and headers)."""
    return f"{settings.public_url}/media/{file_name}"


def _dimensions(width: int, height: int) -> dict[str, Any]:
    return {
        "width": width,
        "height": height,
        "size": f"{width}x{height}",
        "aspect": width / height if height else 1.0,
    }


def media_entity(media: MediaAttachment, settings: Settings) -> dict[str, Any]:
    return {
        "id": str(media.id),
        "type": media.type,
        "url": media_file_url(settings, media.file_name),
        "preview_url": media_file_url(settings, media.thumb_name),
        "remote_url": None,
        "preview_remote_url": None,
        "text_url": None,
        "meta": {
            "original": _dimensions(media.width, media.height),
            "small": _dimensions(media.thumb_width, media.thumb_height),
            "focus": {"x": media.focus_x, "y": media.focus_y},
        },
        "description": media.description,
        "blurhash": media.blurhash,
    }
