"""One WebSocket connection of the streaming API, speaking Mastodon's protocol.

The client subscribes and unsubscribes with ``{"type": "subscribe", "stream": "hashtag",
"tag": "cats"}``; the server sends ``{"stream": ["hashtag", "cats"], "event": "update",
"payload": "<JSON string>"}`` and, when a request fails, ``{"error": "...", "status": 4xx}``.
Every message to the client goes through the connection's mailbox, written by one task.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

import orjson
from fastapi import WebSocket
from starlette.websockets import WebSocketDisconnect, WebSocketState

from townsquare.api.errors import ApiError
from townsquare.api.responses import FastJSON
from townsquare.shield.ratelimit import client_address
from townsquare.state import app_state
from townsquare.streaming.auth import protocol_token, stream_viewer
from townsquare.streaming.connection import ConnectionClosed, Outgoing, StreamConnection
from townsquare.streaming.hub import StreamingHub, hub_of
from townsquare.streaming.streams import StreamRequest

log = logging.getLogger("townsquare.streaming")

MAX_CLIENT_MESSAGE = 4096
ERROR_EVENT = "error"
# Close codes (RFC 6455): going away, policy violation, try again later.
GOING_AWAY = 1001
POLICY_VIOLATION = 1008
TRY_AGAIN_LATER = 1013


async def serve_websocket(websocket: WebSocket) -> None:
    try:
        hub = hub_of(app_state(websocket))
        viewer = await stream_viewer(websocket)
        if viewer.account is None:
            raise ApiError(401, "Missing access token")
        connection = hub.open(viewer, address=client_address(websocket.scope))
    except ApiError as error:
        await _refuse(websocket, error)
        return
    try:
        await websocket.accept(subprotocol=protocol_token(websocket))
        initial = websocket.query_params.get("stream")
        if initial:
            params = websocket.query_params
            await _subscribe(
                hub, connection, StreamRequest(initial, params.get("tag"), params.get("list"))
            )
        await _run(websocket, hub, connection)
    finally:
        hub.close(connection)


async def _refuse(websocket: WebSocket, error: ApiError) -> None:
    """Answer with a plain HTTP error before the upgrade where the server allows it."""
    if "websocket.http.response" in websocket.scope.get("extensions", {}):
        response = FastJSON({"error": error.message}, status_code=error.status)
        await websocket.send_denial_response(response)
    else:
        code = TRY_AGAIN_LATER if error.status in (429, 503) else POLICY_VIOLATION
        await websocket.close(code=code, reason=error.message)


async def _run(websocket: WebSocket, hub: StreamingHub, connection: StreamConnection) -> None:
    reader = asyncio.create_task(_read(websocket, hub, connection))
    writer = asyncio.create_task(_write(websocket, connection))
    try:
        await asyncio.wait({reader, writer}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in (reader, writer):
            task.cancel()
        for task in (reader, writer):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
    if writer.done() and not writer.cancelled() and writer.exception() is None:
        # The server ended the stream: say why, unless the client is already gone.
        if connection.mailbox.overflowed:
            code, reason = TRY_AGAIN_LATER, "Too slow to keep up with the stream"
        else:
            code, reason = GOING_AWAY, "Server is shutting down"
        if websocket.application_state == WebSocketState.CONNECTED and (
            websocket.client_state == WebSocketState.CONNECTED
        ):
            with contextlib.suppress(Exception):
                await websocket.close(code=code, reason=reason)


async def _write(websocket: WebSocket, connection: StreamConnection) -> None:
    while True:
        try:
            items = await connection.mailbox.take(3600.0)
        except ConnectionClosed:
            return
        for item in items:
            await websocket.send_text(_message(item))


def _message(item: Outgoing) -> str:
    if item.event == ERROR_EVENT and not item.stream:
        return item.payload
    return orjson.dumps(
        {"stream": list(item.stream), "event": item.event, "payload": item.payload}
    ).decode()


def _send_error(connection: StreamConnection, message: str, status: int) -> None:
    payload = orjson.dumps({"error": message, "status": status}).decode()
    connection.mailbox.offer(Outgoing((), ERROR_EVENT, payload))


async def _read(websocket: WebSocket, hub: StreamingHub, connection: StreamConnection) -> None:
    while True:
        try:
            message = await websocket.receive()
        except WebSocketDisconnect:
            return
        if message["type"] == "websocket.disconnect":
            return
        text = message.get("text")
        if text is None and message.get("bytes") is not None:
            text = message["bytes"].decode("utf-8", "replace")
        if not text:
            continue
        if len(text) > MAX_CLIENT_MESSAGE:
            _send_error(connection, "Message too large", 413)
            continue
        try:
            data = orjson.loads(text)
        except orjson.JSONDecodeError:
            _send_error(connection, "Message is not valid JSON", 400)
            continue
        if not isinstance(data, dict):
            _send_error(connection, "Message must be a JSON object", 400)
            continue
        await _handle(hub, connection, data)


async def _handle(hub: StreamingHub, connection: StreamConnection, data: dict[str, Any]) -> None:
    kind = data.get("type")
    if kind not in ("subscribe", "unsubscribe"):
        return  # Mastodon ignores message types it does not know
    stream = data.get("stream")
    if isinstance(stream, list):
        stream = stream[0] if stream else None
    tag, list_id = data.get("tag"), data.get("list")
    if not isinstance(stream, str) or not stream:
        _send_error(connection, "Unknown stream type", 400)
        return
    request = StreamRequest(
        stream,
        tag=tag if isinstance(tag, str) else None,
        list=str(list_id) if isinstance(list_id, str | int) else None,
    )
    if kind == "subscribe":
        await _subscribe(hub, connection, request)
    else:
        hub.unsubscribe(connection, request)


async def _subscribe(
    hub: StreamingHub, connection: StreamConnection, request: StreamRequest
) -> None:
    try:
        await hub.subscribe(connection, request)
    except ApiError as error:
        _send_error(connection, error.message, error.status)
