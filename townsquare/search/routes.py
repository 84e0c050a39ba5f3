"""Search v2 (``/api/v2/search``) and its older shape (``/api/v1/search``)."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlalchemy.ext.asyncio import AsyncSession

from townsquare.accounts.entities import account_entity
from townsquare.api.auth import Viewer, anyone
from townsquare.api.errors import ApiError
from townsquare.api.params import parse, read_params
from townsquare.instance.trends import render_tags
from townsquare.oauth.scopes import covers
from townsquare.search.directory import search_accounts, search_tags
from townsquare.search.operators import parse_query
from townsquare.search.statuses import StatusQuery, search_statuses
from townsquare.state import AppState, app_state
from townsquare.statuses.entities import render_statuses

router = APIRouter()

MAX_QUERY = 500
MAX_LIMIT = 40
MAX_OFFSET = 10_000


class SearchQuery(BaseModel):
    model_config = ConfigDict(extra="ignore")

    q: str = Field(max_length=MAX_QUERY)
    type: Literal["accounts", "hashtags", "statuses"] | None = None
    limit: int = Field(20, ge=1, le=MAX_LIMIT)
    offset: int = Field(0, ge=0, le=MAX_OFFSET)
    resolve: bool = False
    following: bool = False
    exclude_unreviewed: bool = False
    account_id: int | None = Field(None, gt=0, lt=2**63)
    max_id: int | None = Field(None, ge=0, lt=2**63)
    min_id: int | None = Field(None, ge=0, lt=2**63)

    @field_validator("type", "account_id", "max_id", "min_id", mode="before")
    @classmethod
    def _empty_is_none(cls, value: Any) -> Any:
        return None if value == "" else value

    def wants(self, kind: str) -> bool:
        return self.type is None or self.type == kind


def _check_access(viewer: Viewer, query: SearchQuery) -> None:
    if viewer.token_id is not None and not covers(viewer.scopes, "read:search"):
        raise ApiError(403, "This action is outside the authorized scopes")
    # As on Mastodon: paging through results, or looking further, needs a logged-in user.
    if viewer.account_id is None and query.resolve:
        raise ApiError(
            401,
            "Search queries that resolve remote resources are not supported without authentication",
        )
    if viewer.account_id is None and query.offset > 0:
        raise ApiError(401, "Search queries pagination is not supported without authentication")


async def _results(state: AppState, viewer: Viewer, query: SearchQuery) -> dict[str, Any]:
    # A search makes many statements: on SQLite it runs whole on a reader thread, where they
    # do not each wait for a turn of a busy event loop (townsquare/db/reader_threads.py).
    viewer_id = viewer.account_id
    settings = state.settings

    async def search(session: AsyncSession) -> dict[str, Any]:
        results: dict[str, Any] = {"accounts": [], "statuses": [], "hashtags": []}
        if query.wants("accounts"):
            accounts = await search_accounts(
                session,
                viewer_id,
                query.q,
                settings.domain,
                limit=query.limit,
                offset=query.offset,
                following=query.following,
            )
            results["accounts"] = [account_entity(account, settings) for account in accounts]
        if query.wants("hashtags"):
            tags = await search_tags(session, query.q, limit=query.limit, offset=query.offset)
            results["hashtags"] = await render_tags(session, settings, viewer_id, tags)
        # Full-text search of statuses is for logged-in users only, as on Mastodon.
        if query.wants("statuses") and viewer_id is not None:
            statuses = await search_statuses(
                session,
                StatusQuery(
                    parsed=parse_query(query.q),
                    viewer_id=viewer_id,
                    limit=query.limit,
                    offset=query.offset,
                    account_id=query.account_id,
                    max_id=query.max_id,
                    min_id=query.min_id,
                    local_domain=settings.domain,
                ),
            )
            results["statuses"] = await render_statuses(session, state, viewer_id, statuses)
        return results

    return await state.db.read_apart(search)


@router.get("/api/v2/search")
async def search_v2(request: Request, viewer: Viewer = Depends(anyone)) -> dict[str, Any]:
    query = parse(SearchQuery, await read_params(request))
    _check_access(viewer, query)
    return await _results(app_state(request), viewer, query)


@router.get("/api/v1/search")
async def search_v1(request: Request, viewer: Viewer = Depends(anyone)) -> dict[str, Any]:
    """The pre-2.4 shape: hashtags are plain names."""
    query = parse(SearchQuery, await read_params(request))
    _check_access(viewer, query)
    results = await _results(app_state(request), viewer, query)
    results["hashtags"] = [tag["name"] for tag in results["hashtags"]]
    return results
