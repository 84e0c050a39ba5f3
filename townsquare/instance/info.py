"""What the instance says about itself: the v1 and v2 ``Instance`` entities and their counts.

Counts are cached per process for half a minute: apps fetch the instance on every start, and an
attacker could otherwise make each request count every account and status.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from townsquare import MASTODON_COMPAT_VERSION, __version__
from townsquare.accounts.models import Account
from townsquare.config import Settings
from townsquare.db.base import utcnow
from townsquare.ids import id_at
from townsquare.media.processing import SUPPORTED_MIME_TYPES
from townsquare.media.service import MAX_DESCRIPTION
from townsquare.state import AppState
from townsquare.statuses.models import Status
from townsquare.statuses.schemas import MAX_OPTION_CHARS, POLL_MAX_SECONDS, POLL_MIN_SECONDS

STATS_TTL_SECONDS = 30.0
MAX_FEATURED_TAGS = 10
MAX_PINNED_STATUSES = 5
MAX_PROFILE_FIELDS = 4
CHARACTERS_RESERVED_PER_URL = 23
LANGUAGES = ["en"]
SOURCE_URL = "https://github.com/townsquare-social/townsquare"


def version_string() -> str:
    """Clients parse the Mastodon version at the front; the rest names what really answers."""
    return f"{MASTODON_COMPAT_VERSION} (compatible; Townsquare {__version__})"


@dataclass(frozen=True)
class InstanceStats:
    user_count: int
    status_count: int
    active_month: int
    active_halfyear: int


def _since(days: int) -> int:
    """The smallest status id minted ``days`` ago (ids are time-ordered)."""
    moment = utcnow() - dt.timedelta(days=days)
    return id_at(int(moment.timestamp() * 1000))


async def _active_authors(session: AsyncSession, days: int) -> int:
    count = await session.scalar(
        select(func.count(func.distinct(Status.account_id))).where(Status.id >= _since(days))
    )
    return int(count or 0)


async def count_stats(session: AsyncSession) -> InstanceStats:
    users = await session.scalar(
        select(func.count()).select_from(Account).where(Account.suspended_at.is_(None))
    )
    statuses = await session.scalar(
        select(func.count()).select_from(Status).where(Status.reblog_of_id.is_(None))
    )
    return InstanceStats(
        user_count=int(users or 0),
        status_count=int(statuses or 0),
        active_month=await _active_authors(session, 30),
        active_halfyear=await _active_authors(session, 180),
    )


_STATS_KEY = "instance.stats"
_STATS_LOCK_KEY = "instance.stats.lock"


async def cached_stats(state: AppState) -> InstanceStats:
    """The counts, recomputed at most once per :data:`STATS_TTL_SECONDS` per process."""
    cached = state.extras.get(_STATS_KEY)
    now = time.monotonic()
    if cached is not None and now - cached[0] < STATS_TTL_SECONDS:
        stats: InstanceStats = cached[1]
        return stats
    lock = state.extras.setdefault(_STATS_LOCK_KEY, asyncio.Lock())
    async with lock:
        cached = state.extras.get(_STATS_KEY)
        if cached is not None and time.monotonic() - cached[0] < STATS_TTL_SECONDS:
            return cached[1]  # type: ignore[no-any-return]
        async with state.db.read() as session:
            stats = await count_stats(session)
        state.extras[_STATS_KEY] = (time.monotonic(), stats)
        return stats


def streaming_url(settings: Settings) -> str:
    base = settings.public_url
    if base.startswith("https://"):
        return "wss://" + base.removeprefix("https://")
    return "ws://" + base.removeprefix("http://")


def thumbnail_url(settings: Settings) -> str:
    return f"{settings.public_url}/instance/thumbnail.png"


def _polls(settings: Settings) -> dict[str, Any]:
    return {
        "max_options": settings.poll_max_options,
        "max_characters_per_option": MAX_OPTION_CHARS,
        "min_expiration": POLL_MIN_SECONDS,
        "max_expiration": POLL_MAX_SECONDS,
    }


def _statuses(settings: Settings) -> dict[str, Any]:
    return {
        "max_characters": settings.max_status_chars,
        "max_media_attachments": settings.max_media_attachments,
        "characters_reserved_per_url": CHARACTERS_RESERVED_PER_URL,
    }


def _media(settings: Settings) -> dict[str, Any]:
    return {
        "supported_mime_types": list(SUPPORTED_MIME_TYPES),
        "description_limit": MAX_DESCRIPTION,
        "image_size_limit": settings.max_image_bytes,
        "image_matrix_limit": settings.max_image_pixels,
        # Video is not accepted; the keys stay because clients read them unconditionally.
        "video_size_limit": 0,
        "video_frame_rate_limit": 0,
        "video_matrix_limit": 0,
    }


def instance_v2(settings: Settings, stats: InstanceStats) -> dict[str, Any]:
    thumbnail = thumbnail_url(settings)
    return {
        "domain": settings.domain,
        "title": settings.instance_title,
        "version": version_string(),
        "source_url": SOURCE_URL,
        "description": settings.instance_description,
        "usage": {"users": {"active_month": stats.active_month}},
        "thumbnail": {
            "url": thumbnail,
            "blurhash": None,
            "versions": {"@1x": thumbnail, "@2x": thumbnail},
        },
        "icon": [],
        "languages": LANGUAGES,
        "configuration": {
            "urls": {
                "streaming": streaming_url(settings),
                "status": None,
                "about": f"{settings.public_url}/about",
                "privacy_policy": None,
                "terms_of_service": None,
            },
            "vapid": {"public_key": ""},
            "accounts": {
                "max_featured_tags": MAX_FEATURED_TAGS,
                "max_pinned_statuses": MAX_PINNED_STATUSES,
                "max_profile_fields": MAX_PROFILE_FIELDS,
                "profile_field_name_limit": 255,
                "profile_field_value_limit": 255,
                "max_display_name_length": 30,
                "max_note_length": 500,
            },
            "statuses": _statuses(settings),
            "media_attachments": _media(settings),
            "polls": _polls(settings),
            "translation": {"enabled": False},
            "timelines_access": {
                "live_feeds": {"local": "public", "remote": "public"},
                "hashtag_feeds": {"local": "public", "remote": "public"},
                "trending_link_feeds": {"local": "public", "remote": "public"},
            },
        },
        "registrations": {
            "enabled": settings.registrations_open,
            "approval_required": False,
            "reason_required": False,
            "message": None,
            "min_age": None,
            "url": None,
        },
        "api_versions": {"mastodon": 6},
        "contact": {"email": settings.contact_email, "account": None},
        "rules": [],
    }


def instance_v1(settings: Settings, stats: InstanceStats) -> dict[str, Any]:
    return {
        "uri": settings.domain,
        "title": settings.instance_title,
        "short_description": settings.instance_description,
        "description": settings.instance_description,
        "email": settings.contact_email,
        "version": version_string(),
        "urls": {"streaming_api": streaming_url(settings)},
        "stats": {
            "user_count": stats.user_count,
            "status_count": stats.status_count,
            "domain_count": 1,
        },
        "thumbnail": thumbnail_url(settings),
        "languages": LANGUAGES,
        "registrations": settings.registrations_open,
        "approval_required": False,
        "invites_enabled": False,
        "configuration": {
            "accounts": {"max_featured_tags": MAX_FEATURED_TAGS},
            "statuses": _statuses(settings),
            "media_attachments": _media(settings),
            "polls": _polls(settings),
        },
        "contact_account": None,
        "rules": [],
    }
