"""Who is asking, for the rooms API: an OAuth bearer token, or the web app's session cookie.

The session is what a browser on the room page has when it came from the web app. Reading
with it is like reading with a token; a request that changes something must also carry the
page's CSRF token (``X-CSRF-Token``) and come from this site. The WebSockets take the cookie
through the streaming API's rules (same ``Origin`` only).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from fastapi import Request

from townsquare.api.auth import Viewer, anyone, bearer_token, user
from townsquare.streaming.auth import SESSION_COOKIE

UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def room_viewer(scope: str | None = None) -> Callable[[Request], Awaitable[Viewer]]:
    """A dependency: the session's account, else what ``user(scope)`` (or, without a scope,
    ``anyone``) would give."""
    check_token = user(scope) if scope is not None else anyone

    async def dependency(request: Request) -> Viewer:
        if bearer_token(request) is None and request.cookies.get(SESSION_COOKIE):
            from townsquare.web.sessions import check_csrf, session_viewer

            viewer = await session_viewer(request)
            if viewer.account is not None:
                if request.method in UNSAFE_METHODS:
                    check_csrf(request, None)
                return viewer
        return await check_token(request)

    return dependency
