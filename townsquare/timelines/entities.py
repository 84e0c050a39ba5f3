"""The Mastodon ``List`` and ``Marker`` entities."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from townsquare.accounts.entities import iso_time
from townsquare.timelines.models import Marker, UserList


def list_entity(user_list: UserList) -> dict[str, Any]:
    return {
        "id": str(user_list.id),
        "title": user_list.title,
        "replies_policy": user_list.replies_policy,
        "exclusive": user_list.exclusive,
    }


def markers_entity(markers: Iterable[Marker]) -> dict[str, Any]:
    return {
        marker.timeline: {
            "last_read_id": str(marker.last_read_id),
            "version": marker.version,
            "updated_at": iso_time(marker.updated_at),
        }
        for marker in markers
    }
