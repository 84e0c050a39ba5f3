"""Version-1 filters (``/api/v1/filters``): each is one keyword of a filter of its own."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlalchemy import func, select

from townsquare.api.auth import Viewer, user
from townsquare.api.errors import ApiError
from townsquare.api.params import as_id, as_list, parse, read_params
from townsquare.instance import filters as service
from townsquare.instance.filter_routes import Context, seconds_from
from townsquare.instance.models import Filter, FilterKeyword, FilterStatus
from townsquare.state import app_state

router = APIRouter()

READ = Depends(user("read:filters"))
WRITE = Depends(user("write:filters"))


class V1Fields(BaseModel):
    model_config = ConfigDict(extra="ignore")

    phrase: str | None = Field(None, min_length=1, max_length=200)
    context: list[Context] | None = Field(None, min_length=1)
    irreversible: bool | None = None
    whole_word: bool | None = None
    expires_in: int | str | None = None

    @field_validator("context", mode="before")
    @classmethod
    def _lists(cls, value: Any) -> Any:
        return None if value is None else as_list(value)

    def changes(self) -> service.FilterChanges:
        action = None if self.irreversible is None else ("hide" if self.irreversible else "warn")
        return service.FilterChanges(
            title=self.phrase,
            context=list(self.context) if self.context is not None else None,
            filter_action=action,
            expires_in=seconds_from(self.expires_in),
            clear_expiry=self.expires_in == "",
        )


@router.get("/api/v1/filters")
async def list_v1_filters(request: Request, viewer: Viewer = READ) -> list[dict[str, Any]]:
    account = viewer.require_account()
    async with app_state(request).db.read() as session:
        rows = await session.execute(
            select(FilterKeyword, Filter)
            .join(Filter, Filter.id == FilterKeyword.filter_id)
            .where(Filter.account_id == account.id)
            .order_by(FilterKeyword.id)
        )
        return [service.v1_filter_entity(keyword, found) for keyword, found in rows]


@router.post("/api/v1/filters")
async def create_v1_filter(request: Request, viewer: Viewer = WRITE) -> dict[str, Any]:
    account = viewer.require_account()
    fields = parse(V1Fields, await read_params(request))
    if fields.phrase is None or fields.context is None:
        raise ApiError(422, "Validation failed: phrase and context are required")
    async with app_state(request).db.write() as session:
        created = await service.create_filter(
            session, account.id, fields.phrase, list(fields.context), fields.changes()
        )
        keyword = await service.add_keyword(
            session, created, fields.phrase, fields.whole_word is not False
        )
    return service.v1_filter_entity(keyword, created)


@router.get("/api/v1/filters/{keyword_id}")
async def show_v1_filter(
    keyword_id: str, request: Request, viewer: Viewer = READ
) -> dict[str, Any]:
    account = viewer.require_account()
    async with app_state(request).db.read() as session:
        keyword, found = await service.own_keyword(session, account.id, as_id(keyword_id))
    return service.v1_filter_entity(keyword, found)


@router.put("/api/v1/filters/{keyword_id}")
async def update_v1_filter(
    keyword_id: str, request: Request, viewer: Viewer = WRITE
) -> dict[str, Any]:
    account = viewer.require_account()
    fields = parse(V1Fields, await read_params(request))
    async with app_state(request).db.write() as session:
        keyword, found = await service.own_keyword(session, account.id, as_id(keyword_id))
        changes = fields.changes()
        # The phrase is the keyword; the filter's title is left as it was.
        await service.update_filter(
            session,
            found,
            service.FilterChanges(
                context=changes.context,
                filter_action=changes.filter_action,
                expires_in=changes.expires_in,
                clear_expiry=changes.clear_expiry,
            ),
        )
        if fields.phrase is not None:
            keyword.keyword = fields.phrase
        if fields.whole_word is not None:
            keyword.whole_word = fields.whole_word
    return service.v1_filter_entity(keyword, found)


@router.delete("/api/v1/filters/{keyword_id}")
async def delete_v1_filter(
    keyword_id: str, request: Request, viewer: Viewer = WRITE
) -> dict[str, Any]:
    account = viewer.require_account()
    async with app_state(request).db.write() as session:
        keyword, found = await service.own_keyword(session, account.id, as_id(keyword_id))
        await session.delete(keyword)
        await session.flush()
        # A filter left with nothing to match would linger invisibly in version-1 clients.
        left = await session.scalar(
            select(func.count())
            .select_from(FilterKeyword)
            .where(FilterKeyword.filter_id == found.id)
        )
        statuses = await session.scalar(
            select(func.count()).select_from(FilterStatus).where(FilterStatus.filter_id == found.id)
        )
        if not left and not statuses:
            await service.delete_filter(session, found)
    return {}
