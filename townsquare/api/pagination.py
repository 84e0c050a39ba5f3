"""Mastodon's id-range pagination: ``max_id``, ``since_id``, ``min_id``, ``limit`` and ``Link``."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from fastapi import Request, Response
from sqlalchemy import Select
from sqlalchemy.orm import InstrumentedAttribute

from townsquare.api.errors import ApiError


@dataclass(frozen=True)
class Page:
    max_id: int | None = None
    since_id: int | None = None
    min_id: int | None = None
    limit: int = 20

    @property
    def ascending(self) -> bool:
        """``min_id`` asks for the page just after it (results still returned newest first)."""
        return self.min_id is not None and self.max_id is None

    def apply(self, query: Select[Any], column: InstrumentedAttribute[int]) -> Select[Any]:
        """Bound and order ``query`` by ``column`` (a snowflake id) for this page."""
        if self.max_id is not None:
            query = query.where(column < self.max_id)
        if self.since_id is not None:
            query = query.where(column > self.since_id)
        if self.min_id is not None:
            query = query.where(column > self.min_id)
        order = column.asc() if self.ascending else column.desc()
        return query.order_by(order).limit(self.limit)

    def finish(self, rows: Sequence[Any]) -> list[Any]:
        """Rows fetched by :meth:`apply`, newest first."""
        result = list(rows)
        if self.ascending:
            result.reverse()
        return result


def _as_int(value: str | None, name: str) -> int | None:
    if value is None or value == "":
        return None
    try:
        number = int(value)
    except ValueError:
        raise ApiError(400, f"{name} must be an id") from None
    # Ids are positive 64-bit integers: anything else would reach the database driver and fail
    # there.
    if not 0 <= number < 2**63:
        raise ApiError(400, f"{name} must be an id")
    return number


def page_params(request: Request, *, default: int = 20, maximum: int = 40) -> Page:
    """Read the paging parameters; ``limit`` is clamped to 1..``maximum`` as Mastodon does."""
    q = request.query_params
    raw_limit = q.get("limit")
    limit = default
    if raw_limit not in (None, ""):
        try:
            limit = int(raw_limit)
        except ValueError:
            raise ApiError(400, "limit must be a number") from None
    return Page(
        max_id=_as_int(q.get("max_id"), "max_id"),
        since_id=_as_int(q.get("since_id"), "since_id"),
        min_id=_as_int(q.get("min_id"), "min_id"),
        limit=max(1, min(limit, maximum)),
    )


def link_header(request: Request, response: Response, ids: Sequence[int]) -> None:
    """Set ``Link: <...max_id=oldest>; rel="next", <...min_id=newest>; rel="prev"``."""
    if not ids:
        return
    base = str(request.url.replace(query=""))
    kept = [
        (k, v)
        for k, v in request.query_params.multi_items()
        if k not in ("max_id", "since_id", "min_id")
    ]
    newer = urlencode([*kept, ("min_id", str(max(ids)))])
    older = urlencode([*kept, ("max_id", str(min(ids)))])
    response.headers["Link"] = f'<{base}?{older}>; rel="next", <{base}?{newer}>; rel="prev"'
