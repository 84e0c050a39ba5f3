"""Following hashtags: ``/api/v1/tags/:name``, its follow and unfollow, and ``followed_tags``."""

from __future__ import annotations

import re
from typing import Any

from fastapi import APIRouter, Depends, Request, Response
from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from townsquare.api.auth import Viewer, anyone, user
from townsquare.api.errors import not_found
from townsquare.api.pagination import link_header, page_params
from townsquare.db.base import utcnow
from townsquare.graph.sql import insert_or_ignore
from townsquare.ids import new_id
from townsquare.state import app_state
from townsquare.statuses.models import Tag, TagFollow

router = APIRouter()

# The same shape statuses accept after "#": word characters with at least one letter.
TAG_NAME = re.compile(r"^\w*[^\W\d]\w*$")
MAX_TAG_LENGTH = 100


def _checked_name(name: str) -> str:
    name = name.lstrip("#")
    if not name or len(name) > MAX_TAG_LENGTH or not TAG_NAME.match(name):
        raise not_found("Tag")
    return name


def tag_entity(tag: Tag, request: Request, *, following: bool | None) -> dict[str, Any]:
    base = app_state(request).settings.public_url
    entity: dict[str, Any] = {
        "id": str(tag.id),
        "name": tag.name,
        "url": f"{base}/tags/{tag.name}",
        "history": [],
    }
    if following is not None:
        entity["following"] = following
        entity["featuring"] = False
    return entity


async def _find_tag(session: AsyncSession, name: str) -> Tag | None:
    return await session.scalar(select(Tag).where(Tag.name_key == name.lower()))


async def _is_following(session: AsyncSession, account_id: int | None, tag_id: int) -> bool | None:
    if account_id is None:
        return None
    found = await session.scalar(
        select(TagFollow.tag_id).where(
            TagFollow.account_id == account_id, TagFollow.tag_id == tag_id
        )
    )
    return found is not None


@router.get("/api/v1/tags/{name}")
async def show_tag(name: str, request: Request, viewer: Viewer = Depends(anyone)) -> dict[str, Any]:
    name = _checked_name(name)
    async with app_state(request).db.read() as session:
        tag = await _find_tag(session, name)
        if tag is None:
            raise not_found("Tag")
        following = await _is_following(session, viewer.account_id, tag.id)
    return tag_entity(tag, request, following=following)


@router.post("/api/v1/tags/{name}/follow")
async def follow_tag(
    name: str, request: Request, viewer: Viewer = Depends(user("write:follows"))
) -> dict[str, Any]:
    name = _checked_name(name)
    actor = viewer.require_account()
    async with app_state(request).db.write() as session:
        await insert_or_ignore(
            session,
            Tag,
            {"id": new_id(), "name": name, "name_key": name.lower(), "created_at": utcnow()},
            ["name_key"],
        )
        tag = await _find_tag(session, name)
        assert tag is not None
        await insert_or_ignore(
            session,
            TagFollow,
            {"account_id": actor.id, "tag_id": tag.id},
            ["account_id", "tag_id"],
        )
    return tag_entity(tag, request, following=True)


@router.post("/api/v1/tags/{name}/unfollow")
async def unfollow_tag(
    name: str, request: Request, viewer: Viewer = Depends(user("write:follows"))
) -> dict[str, Any]:
    name = _checked_name(name)
    actor = viewer.require_account()
    async with app_state(request).db.write() as session:
        tag = await _find_tag(session, name)
        if tag is None:
            raise not_found("Tag")
        await session.execute(
            delete(TagFollow)
            .where(TagFollow.account_id == actor.id, TagFollow.tag_id == tag.id)
            .execution_options(synchronize_session=False)
        )
    return tag_entity(tag, request, following=False)


@router.get("/api/v1/followed_tags")
async def followed_tags(
    request: Request, response: Response, viewer: Viewer = Depends(user("read:follows"))
) -> list[dict[str, Any]]:
    actor = viewer.require_account()
    page = page_params(request, default=100, maximum=200)
    query = select(TagFollow).where(TagFollow.account_id == actor.id)
    async with app_state(request).db.read() as session:
        follows = page.finish((await session.scalars(page.apply(query, TagFollow.tag_id))).all())
        ids = [follow.tag_id for follow in follows]
        tags = {tag.id: tag for tag in await session.scalars(select(Tag).where(Tag.id.in_(ids)))}
    link_header(request, response, ids)
    return [tag_entity(tags[tag_id], request, following=True) for tag_id in ids if tag_id in tags]
