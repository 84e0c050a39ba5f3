"""Liveness and readiness."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from townsquare.db.migrate import current_revision, head_revision
from townsquare.state import app_state

router = APIRouter()


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz")
async def readyz(request: Request) -> JSONResponse:
    state = app_state(request)
    if not await state.db.ping():
        return JSONResponse({"status": "unavailable", "error": "database unreachable"}, 503)
    if state.extras.get("schema_ready") is not True:
        revision = await current_revision(state.db.url)
        if revision != head_revision():
            return JSONResponse({"status": "unavailable", "error": "migrations not applied"}, 503)
        state.extras["schema_ready"] = True
    return JSONResponse({"status": "ok"})
