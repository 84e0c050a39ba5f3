"""HTTP routes for read markers."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request, Response

from townsquare.api.auth import Viewer, user
from townsquare.api.params import as_list, parse, read_params
from townsquare.api.responses import FastJSON
from townsquare.state import app_state
from townsquare.timelines.entities import markers_entity
from townsquare.timelines.markers import markers_of, save_markers
from townsquare.timelines.schemas import MarkerUpdate

router = APIRouter()


@router.get("/api/v1/markers")
async def show(request: Request, viewer: Viewer = Depends(user("read:statuses"))) -> Response:
    account = viewer.require_account()
    params = await read_params(request)
    timelines = [str(name) for name in as_list(params.get("timeline"))]
    async with app_state(request).db.read() as session:
        found = await markers_of(session, account.id, timelines)
    return FastJSON(markers_entity(found))


@router.post("/api/v1/markers")
async def save(request: Request, viewer: Viewer = Depends(user("write:statuses"))) -> Response:
    account = viewer.require_account()
    update = parse(MarkerUpdate, await read_params(request))
    positions = update.positions()
    async with app_state(request).db.write() as session:
        saved = await save_markers(session, account.id, positions)
    return FastJSON(markers_entity(saved))
