"""HTTP routes for lists and their members."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request, Response

from townsquare.accounts.entities import account_entity
from townsquare.api.auth import Viewer, user
from townsquare.api.errors import ApiError
from townsquare.api.pagination import Page, link_header, page_params
from townsquare.api.params import as_id, parse, read_params
from townsquare.api.responses import FastJSON
from townsquare.state import app_state
from townsquare.timelines import lists
from townsquare.timelines.entities import list_entity
from townsquare.timelines.schemas import ListChanges, ListDraft, ListMembers

router = APIRouter()

read_lists = user("read:lists")
write_lists = user("write:lists")


@router.get("/api/v1/lists")
async def all_lists(request: Request, viewer: Viewer = Depends(read_lists)) -> Response:
    owner = viewer.require_account()
    async with app_state(request).db.read() as session:
        found = await lists.lists_of(session, owner.id)
    return FastJSON([list_entity(item) for item in found])


@router.post("/api/v1/lists")
async def create(request: Request, viewer: Viewer = Depends(write_lists)) -> Response:
    owner = viewer.require_account()
    draft = parse(ListDraft, await read_params(request))
    async with app_state(request).db.write() as session:
        created = await lists.create_list(session, owner.id, draft)
    return FastJSON(list_entity(created))


@router.get("/api/v1/lists/{list_id}")
async def show(list_id: str, request: Request, viewer: Viewer = Depends(read_lists)) -> Response:
    owner = viewer.require_account()
    async with app_state(request).db.read() as session:
        found = await lists.get_list(session, owner.id, as_id(list_id))
    return FastJSON(list_entity(found))


@router.put("/api/v1/lists/{list_id}")
async def update(list_id: str, request: Request, viewer: Viewer = Depends(write_lists)) -> Response:
    owner = viewer.require_account()
    changes = parse(ListChanges, await read_params(request))
    async with app_state(request).db.write() as session:
        updated = await lists.update_list(session, owner.id, as_id(list_id), changes)
    return FastJSON(list_entity(updated))


@router.delete("/api/v1/lists/{list_id}")
async def delete(list_id: str, request: Request, viewer: Viewer = Depends(write_lists)) -> Response:
    owner = viewer.require_account()
    async with app_state(request).db.write() as session:
        await lists.delete_list(session, owner.id, as_id(list_id))
    return FastJSON({})


def _member_page(request: Request) -> Page | None:
    # ``limit=0`` asks for every member at once.
    if request.query_params.get("limit", "").strip() == "0":
        return None
    return page_params(request, default=40, maximum=80)


@router.get("/api/v1/lists/{list_id}/accounts")
async def members(list_id: str, request: Request, viewer: Viewer = Depends(read_lists)) -> Response:
    owner = viewer.require_account()
    page = _member_page(request)
    state = app_state(request)
    async with state.db.read() as session:
        found = await lists.get_list(session, owner.id, as_id(list_id))
        accounts = await lists.member_page(session, found, page)
    response = FastJSON([account_entity(account, state.settings) for account in accounts])
    if page is not None:
        link_header(request, response, [account.id for account in accounts])
    return response


def _account_ids(params: dict[str, object]) -> list[int]:
    parsed = parse(ListMembers, params)
    for account_id in parsed.account_ids:
        if account_id <= 0 or account_id >= 2**63:
            raise ApiError(404, "Record not found")
    return parsed.account_ids


@router.post("/api/v1/lists/{list_id}/accounts")
async def add_members(
    list_id: str, request: Request, viewer: Viewer = Depends(write_lists)
) -> Response:
    owner = viewer.require_account()
    account_ids = _account_ids(await read_params(request))
    async with app_state(request).db.write() as session:
        await lists.add_members(session, owner.id, as_id(list_id), account_ids)
    return FastJSON({})


@router.delete("/api/v1/lists/{list_id}/accounts")
async def remove_members(
    list_id: str, request: Request, viewer: Viewer = Depends(write_lists)
) -> Response:
    owner = viewer.require_account()
    account_ids = _account_ids(await read_params(request))
    async with app_state(request).db.write() as session:
        await lists.remove_members(session, owner.id, as_id(list_id), account_ids)
    return FastJSON({})


@router.get("/api/v1/accounts/{account_id}/lists")
async def lists_with_account(
    account_id: str, request: Request, viewer: Viewer = Depends(read_lists)
) -> Response:
    owner = viewer.require_account()
    async with app_state(request).db.read() as session:
        found = await lists.lists_containing(session, owner.id, as_id(account_id))
    return FastJSON([list_entity(item) for item in found])
