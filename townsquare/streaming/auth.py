"""Who opened a stream. Besides the usual bearer header and ``access_token`` parameter,
browsers' WebSocket API can only pass the token as the ``Sec-WebSocket-Protocol`` header,
which Mastodon accepts too (and echoes back when it accepts the connection)."""

from __future__ import annotations

from starlette.requests import HTTPConnection, Request

from townsquare.api.auth import Viewer, resolve_viewer
from townsquare.shield.standing import SESSION_COOKIE as SESSION_COOKIE_NAME

SESSION_COOKIE = SESSION_COOKIE_NAME.decode()


def protocol_token(connection: HTTPConnection) -> str | None:
    """The token a browser sent as its WebSocket subprotocol, if it used no other way."""
    if connection.headers.get("authorization") or connection.query_params.get("access_token"):
        return None
    offered = connection.headers.get("sec-websocket-protocol", "")
    for value in offered.split(","):
        if value.strip():
            return value.strip()
    return None


def session_token(connection: HTTPConnection) -> str | None:
    """The web app's session cookie, when no token was sent and the page is on this site.

    Reading a stream changes nothing, but a page on another site must not read someone's
    stream with their cookie, so a foreign ``Origin`` gets no session.
    """
    if connection.headers.get("authorization") or connection.query_params.get("access_token"):
        return None
    origin = connection.headers.get("origin")
    if origin is not None and origin.split("://", 1)[-1] != connection.headers.get("host"):
        return None
    return connection.cookies.get(SESSION_COOKIE) or None


async def stream_viewer(connection: HTTPConnection) -> Viewer:
    """The viewer behind ``connection`` (anonymous if no token was sent); an invalid token
    raises the same 401 as anywhere else in the API."""
    # The token lookup reads headers and query only, the same on both kinds of connection.
    scope = {**connection.scope, "type": "http"}
    token = protocol_token(connection) or session_token(connection)
    if token is not None:
        scope["headers"] = [
            *scope.get("headers", []),
            (b"authorization", f"Bearer {token}".encode("latin-1")),
        ]
    return await resolve_viewer(Request(scope))
