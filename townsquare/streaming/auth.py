"""Who opened a stream. Besides the usual bearer header and ``access_token`` parameter,
browsers' WebSocket API can only pass the token as the ``Sec-WebSocket-Protocol`` header,
which Mastodon accepts too (and echoes back when it accepts the connection)."""

from __future__ import annotations

from starlette.requests import HTTPConnection, Request

from townsquare.api.auth import Viewer, resolve_viewer


def protocol_token(connection: HTTPConnection) -> str | None:
    """The token a browser sent as its WebSocket subprotocol, if it used no other way."""
    if connection.headers.get("authorization") or connection.query_params.get("access_token"):
        return None
    offered = connection.headers.get("sec-websocket-protocol", "")
    for value in offered.split(","):
        if value.strip():
            return value.strip()
    return None


async def stream_viewer(connection: HTTPConnection) -> Viewer:
    """The viewer behind ``connection`` (anonymous if no token was sent); an invalid token
    raises the same 401 as anywhere else in the API."""
    # The token lookup reads headers and query only, the same on both kinds of connection.
    scope = {**connection.scope, "type": "http"}
    token = protocol_token(connection)
    if token is not None:
        scope["headers"] = [
            *scope.get("headers", []),
            (b"authorization", f"Bearer {token}".encode("latin-1")),
        ]
    return await resolve_viewer(Request(scope))
