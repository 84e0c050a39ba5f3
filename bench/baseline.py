"""The baseline: a bare Starlette app answering with a fixed, timeline-sized JSON body.

It runs on the same uvicorn set-up as Townsquare, so the gap between the two is what
Townsquare's work (auth, queries, privacy, rendering) costs per request.
"""

from __future__ import annotations

import os
from pathlib import Path

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

BODY_ENV = "BENCH_BASELINE_BODY"


def app() -> Starlette:
    body = Path(os.environ[BODY_ENV]).read_bytes()

    async def timeline(_request: Request) -> Response:
        return Response(body, media_type="application/json")

    async def ready(_request: Request) -> Response:
        return Response(b'{"status":"ok"}', media_type="application/json")

    return Starlette(routes=[Route("/api/v1/timelines/home", timeline), Route("/readyz", ready)])
