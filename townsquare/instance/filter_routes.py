"""Filters over HTTP: ``/api/v2/filters`` with keywords and statuses, and version-1 filters."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, ConfigDict, Field, field_validator

from townsquare.api.auth import Viewer, user
from townsquare.api.errors import ApiError
from townsquare.api.params import as_id, as_list, parse, read_params
from townsquare.instance import filters as service
from townsquare.instance.models import Filter
from townsquare.state import app_state

router = APIRouter()

Context = Literal["home", "notifications", "public", "thread", "account"]
Action = Literal["warn", "hide", "blur"]
READ = Depends(user("read:filters"))
WRITE = Depends(user("write:filters"))


class KeywordAttributes(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    id: int | None = None
    keyword: str | None = Field(None, min_length=1, max_length=200)
    whole_word: bool | None = None
    destroy: bool = Field(False, alias="_destroy")

    def change(self) -> service.KeywordChange:
        return service.KeywordChange(self.id, self.keyword, self.whole_word, self.destroy)


class FilterFields(BaseModel):
    model_config = ConfigDict(extra="ignore")

    title: str | None = Field(None, min_length=1, max_length=200)
    context: list[Context] | None = Field(None, min_length=1)
    filter_action: Action | None = None
    expires_in: int | str | None = None
    keywords_attributes: list[KeywordAttributes] = Field(default_factory=list, max_length=100)

    @field_validator("context", "keywords_attributes", mode="before")
    @classmethod
    def _lists(cls, value: Any) -> Any:
        return None if value is None else as_list(value)

    def changes(self) -> service.FilterChanges:
        seconds = seconds_from(self.expires_in)
        return service.FilterChanges(
            title=self.title,
            context=list(self.context) if self.context is not None else None,
            filter_action=self.filter_action,
            expires_in=seconds,
            clear_expiry=self.expires_in == "",
            keywords=[attributes.change() for attributes in self.keywords_attributes],
        )


class KeywordFields(BaseModel):
    model_config = ConfigDict(extra="ignore")

    keyword: str | None = Field(None, min_length=1, max_length=200)
    whole_word: bool | None = None


class StatusFields(BaseModel):
    model_config = ConfigDict(extra="ignore")

    status_id: int = Field(gt=0, lt=2**63)


def seconds_from(value: int | str | None) -> int | None:
    if value is None or value == "":
        return None
    try:
        seconds = int(value)
    except ValueError:
        raise ApiError(422, "Validation failed: expires_in must be a number of seconds") from None
    return max(1, seconds)


async def _render(request: Request, found: list[Filter]) -> list[dict[str, Any]]:
    async with app_state(request).db.read() as session:
        parts = await service.load_parts(session, [f.id for f in found])
    return [service.filter_entity(f, parts) for f in found]


@router.get("/api/v2/filters")
async def list_filters(request: Request, viewer: Viewer = READ) -> list[dict[str, Any]]:
    account = viewer.require_account()
    async with app_state(request).db.read() as session:
        found = await service.list_filters(session, account.id)
    return await _render(request, found)


@router.post("/api/v2/filters")
async def create_filter(request: Request, viewer: Viewer = WRITE) -> dict[str, Any]:
    account = viewer.require_account()
    fields = parse(FilterFields, await read_params(request))
    if fields.title is None or fields.context is None:
        raise ApiError(422, "Validation failed: title and context are required")
    async with app_state(request).db.write() as session:
        created = await service.create_filter(
            session, account.id, fields.title, list(fields.context), fields.changes()
        )
    return (await _render(request, [created]))[0]


@router.get("/api/v2/filters/{filter_id}")
async def show_filter(filter_id: str, request: Request, viewer: Viewer = READ) -> dict[str, Any]:
    account = viewer.require_account()
    async with app_state(request).db.read() as session:
        found = await service.own_filter(session, account.id, as_id(filter_id))
    return (await _render(request, [found]))[0]


@router.put("/api/v2/filters/{filter_id}")
async def update_filter(filter_id: str, request: Request, viewer: Viewer = WRITE) -> dict[str, Any]:
    account = viewer.require_account()
    fields = parse(FilterFields, await read_params(request))
    async with app_state(request).db.write() as session:
        found = await service.own_filter(session, account.id, as_id(filter_id))
        await service.update_filter(session, found, fields.changes())
    return (await _render(request, [found]))[0]


@router.delete("/api/v2/filters/{filter_id}")
async def delete_filter(filter_id: str, request: Request, viewer: Viewer = WRITE) -> dict[str, Any]:
    account = viewer.require_account()
    async with app_state(request).db.write() as session:
        found = await service.own_filter(session, account.id, as_id(filter_id))
        await service.delete_filter(session, found)
    return {}


@router.get("/api/v2/filters/{filter_id}/keywords")
async def list_keywords(
    filter_id: str, request: Request, viewer: Viewer = READ
) -> list[dict[str, Any]]:
    account = viewer.require_account()
    async with app_state(request).db.read() as session:
        found = await service.own_filter(session, account.id, as_id(filter_id))
        parts = await service.load_parts(session, [found.id])
    return [service.keyword_entity(k) for k in parts.keywords.get(found.id, [])]


@router.post("/api/v2/filters/{filter_id}/keywords")
async def add_keyword(filter_id: str, request: Request, viewer: Viewer = WRITE) -> dict[str, Any]:
    account = viewer.require_account()
    fields = parse(KeywordFields, await read_params(request))
    if fields.keyword is None:
        raise ApiError(422, "Validation failed: keyword can't be blank")
    async with app_state(request).db.write() as session:
        found = await service.own_filter(session, account.id, as_id(filter_id))
        keyword = await service.add_keyword(
            session, found, fields.keyword, fields.whole_word is not False
        )
    return service.keyword_entity(keyword)


@router.get("/api/v2/filters/keywords/{keyword_id}")
async def show_keyword(keyword_id: str, request: Request, viewer: Viewer = READ) -> dict[str, Any]:
    account = viewer.require_account()
    async with app_state(request).db.read() as session:
        keyword, _ = await service.own_keyword(session, account.id, as_id(keyword_id))
    return service.keyword_entity(keyword)


@router.put("/api/v2/filters/keywords/{keyword_id}")
async def update_keyword(
    keyword_id: str, request: Request, viewer: Viewer = WRITE
) -> dict[str, Any]:
    account = viewer.require_account()
    fields = parse(KeywordFields, await read_params(request))
    async with app_state(request).db.write() as session:
        keyword, _ = await service.own_keyword(session, account.id, as_id(keyword_id))
        if fields.keyword is not None:
            keyword.keyword = fields.keyword
        if fields.whole_word is not None:
            keyword.whole_word = fields.whole_word
    return service.keyword_entity(keyword)


@router.delete("/api/v2/filters/keywords/{keyword_id}")
async def delete_keyword(
    keyword_id: str, request: Request, viewer: Viewer = WRITE
) -> dict[str, Any]:
    account = viewer.require_account()
    async with app_state(request).db.write() as session:
        keyword, _ = await service.own_keyword(session, account.id, as_id(keyword_id))
        await session.delete(keyword)
    return {}


@router.get("/api/v2/filters/{filter_id}/statuses")
async def list_filter_statuses(
    filter_id: str, request: Request, viewer: Viewer = READ
) -> list[dict[str, Any]]:
    account = viewer.require_account()
    async with app_state(request).db.read() as session:
        found = await service.own_filter(session, account.id, as_id(filter_id))
        parts = await service.load_parts(session, [found.id])
    return [service.filter_status_entity(s) for s in parts.statuses.get(found.id, [])]


@router.post("/api/v2/filters/{filter_id}/statuses")
async def add_filter_status(
    filter_id: str, request: Request, viewer: Viewer = WRITE
) -> dict[str, Any]:
    account = viewer.require_account()
    fields = parse(StatusFields, await read_params(request))
    async with app_state(request).db.write() as session:
        found = await service.own_filter(session, account.id, as_id(filter_id))
        entry = await service.add_status(session, found, fields.status_id)
    return service.filter_status_entity(entry)


@router.get("/api/v2/filters/statuses/{entry_id}")
async def show_filter_status(
    entry_id: str, request: Request, viewer: Viewer = READ
) -> dict[str, Any]:
    account = viewer.require_account()
    async with app_state(request).db.read() as session:
        entry, _ = await service.own_filter_status(session, account.id, as_id(entry_id))
    return service.filter_status_entity(entry)


@router.delete("/api/v2/filters/statuses/{entry_id}")
async def delete_filter_status(
    entry_id: str, request: Request, viewer: Viewer = WRITE
) -> dict[str, Any]:
    account = viewer.require_account()
    async with app_state(request).db.write() as session:
        entry, _ = await service.own_filter_status(session, account.id, as_id(entry_id))
        await session.delete(entry)
    return {}
