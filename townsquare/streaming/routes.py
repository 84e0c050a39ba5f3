"""The streaming API: server-sent events at ``/api/v1/streaming/<stream>`` and a WebSocket at
``/api/v1/streaming`` (see docs/STREAMING.md)."""

from __future__ import annotations

from collections.abc import AsyncIterator

from fastapi import APIRouter, Request, WebSocket
from fastapi.responses import PlainTextResponse, StreamingResponse

from townsquare.api.errors import ApiError
from townsquare.shield.ratelimit import client_address
from townsquare.state import app_state
from townsquare.streaming.auth import stream_viewer
from townsquare.streaming.connection import ConnectionClosed, Outgoing, StreamConnection
from townsquare.streaming.hub import StreamingHub, hub_of
from townsquare.streaming.streams import StreamRequest
from townsquare.streaming.websocket import serve_websocket

router = APIRouter()

# Paths under /api/v1/streaming/ and the stream each one opens.
EVENT_STREAM_PATHS = {
    "user": "user",
    "user/notification": "user:notification",
    "public": "public",
    "public/local": "public:local",
    "public/remote": "public:remote",
    "hashtag": "hashtag",
    "hashtag/local": "hashtag:local",
    "list": "list",
    "direct": "direct",
}
TRUTHY = frozenset({"1", "true", "t", "on", "yes"})


@router.get("/api/v1/streaming/health")
async def health() -> PlainTextResponse:
    return PlainTextResponse("OK")


@router.websocket("/api/v1/streaming")
async def websocket_stream(websocket: WebSocket) -> None:
    await serve_websocket(websocket)


@router.get("/api/v1/streaming/{path:path}")
async def event_stream(request: Request, path: str) -> StreamingResponse:
    name = EVENT_STREAM_PATHS.get(path.strip("/"))
    if name is None:
        raise ApiError(404, "Unknown stream type")
    params = request.query_params
    if name.startswith("public") and params.get("only_media", "").lower() in TRUTHY:
        name += ":media"
    hub = hub_of(app_state(request))
    viewer = await stream_viewer(request)
    if viewer.account is None:
        raise ApiError(401, "Missing access token")
    connection = hub.open(viewer, address=client_address(request.scope))
    try:
        await hub.subscribe(
            connection, StreamRequest(name, tag=params.get("tag"), list=params.get("list"))
        )
    except BaseException:
        hub.close(connection)
        raise
    return StreamingResponse(
        _event_stream_body(hub, connection),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )


async def _event_stream_body(hub: StreamingHub, connection: StreamConnection) -> AsyncIterator[str]:
    try:
        yield ":)\n"
        while True:
            try:
                items = await connection.mailbox.take(hub.heartbeat)
            except ConnectionClosed:
                return
            if items:
                yield "".join(_event_stream_message(item) for item in items)
            else:
                yield ":thump\n"
    finally:
        hub.close(connection)


def _event_stream_message(item: Outgoing) -> str:
    data = "".join(f"data: {line}\n" for line in item.payload.split("\n"))
    return f"event: {item.event}\n{data}\n"
