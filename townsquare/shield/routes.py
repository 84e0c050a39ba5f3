"""Earning a proof-of-work pass, the browser's solver, and the metrics endpoint."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, PlainTextResponse, Response
from pydantic import BaseModel, Field

from townsquare.api.errors import ApiError
from townsquare.api.params import parse, read_params
from townsquare.api.responses import FastJSON
from townsquare.shield.addresses import address_prefix, client_address, is_loopback
from townsquare.shield.metrics import CONTENT_TYPE, render_metrics
from townsquare.shield.passes import PassError, challenge_entity, iso8601
from townsquare.shield.standing import PASS_COOKIE
from townsquare.shield.state import ShieldState
from townsquare.state import app_state

router = APIRouter()

WORKER_SCRIPT = Path(__file__).parent / "static" / "pow-worker.js"


def shield_of(request: Request) -> ShieldState:
    shield = app_state(request).extras["shield"]
    assert isinstance(shield, ShieldState)
    return shield


class Solution(BaseModel):
    challenge: str = Field(min_length=1, max_length=256)
    nonce: str = Field(min_length=1, max_length=64)


@router.get("/api/v1/shield/challenge")
async def get_challenge(request: Request) -> Response:
    shield = shield_of(request)
    prefix = address_prefix(client_address(request.scope))
    challenge = shield.issuer.challenge(prefix, shield.difficulty)
    entity = challenge_entity(challenge)
    entity["under_attack"] = shield.mode.active
    return FastJSON(entity, headers={"Cache-Control": "no-store"})


@router.post("/api/v1/shield/pass")
async def post_pass(request: Request) -> Response:
    shield = shield_of(request)
    solution = parse(Solution, await read_params(request))
    prefix = address_prefix(client_address(request.scope))
    try:
        token, issued = shield.issuer.redeem(solution.challenge, solution.nonce, prefix)
    except PassError as error:
        raise ApiError(422, str(error)) from None
    shield.metrics.passes_issued += 1
    count, period = shield.pass_rate
    body: dict[str, Any] = {
        "pass": token,
        "effort": issued.effort,
        "expires_at": iso8601(issued.expires_at),
        "requests": count,
        "period": int(period),
    }
    response = FastJSON(body, headers={"Cache-Control": "no-store"})
    response.set_cookie(
        PASS_COOKIE.decode(),
        token,
        max_age=int(shield.settings.shield_pass_lifetime),
        path="/",
        secure=request.url.scheme == "https",
        httponly=True,
        samesite="lax",
    )
    return response


@router.get("/shield/pow-worker.js")
async def pow_worker() -> Response:
    return FileResponse(
        WORKER_SCRIPT,
        media_type="text/javascript",
        headers={"Cache-Control": "public, max-age=86400"},
    )


@router.get("/metrics")
async def metrics(request: Request) -> Response:
    shield = shield_of(request)
    if not shield.settings.shield_metrics_public and not is_loopback(client_address(request.scope)):
        raise ApiError(404, "Not found")
    return PlainTextResponse(render_metrics(shield), media_type=CONTENT_TYPE)
