"""Rendering pages: the Jinja environment, what every page knows, and errors as pages."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Coroutine
from typing import Any
from urllib.parse import quote, urlsplit

from fastapi import Request
from fastapi.routing import APIRoute
from jinja2 import Environment, PackageLoader, select_autoescape
from starlette.responses import HTMLResponse, RedirectResponse, Response

from townsquare.api.auth import Viewer
from townsquare.api.errors import ApiError, error_response
from townsquare.notifications.service import unread_count
from townsquare.state import app_state
from townsquare.web.sessions import csrf_token, issue_csrf, session_viewer

templates = Environment(
    loader=PackageLoader("townsquare.web", "templates"),
    autoescape=select_autoescape(["html"]),
    trim_blocks=True,
    lstrip_blocks=True,
)

PAGE_HEADERS = {
    "Cache-Control": "no-store",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data: blob:; style-src 'self'; script-src 'self'; "
        "connect-src 'self'; worker-src 'self'; object-src 'none'; base-uri 'self'; "
        "form-action 'self'; frame-ancestors 'none'"
    ),
}
UNREAD_LIMIT = 99
# Anonymous pages without a form are the same for every visitor: caches may keep them briefly.
ANONYMOUS_CACHE = "public, max-age=10"


class LazyCsrf:
    """The CSRF token, made (and its cookie set) only if the page has a form that uses it, so
    pages without forms stay free of cookies and can be cached."""

    def __init__(self, request: Request) -> None:
        self.request = request

    def __str__(self) -> str:
        return csrf_token(self.request)

    def __html__(self) -> str:
        return str(self)


def _ago(value: str) -> str:
    """A short relative time ("5m", "3h", "2d") for an ISO timestamp."""
    moment = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    seconds = max(0, int((dt.datetime.now(dt.UTC) - moment).total_seconds()))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m"
    if seconds < 86400:
        return f"{seconds // 3600}h"
    if seconds < 86400 * 30:
        return f"{seconds // 86400}d"
    return moment.strftime("%d %b %Y")


def _count(value: int) -> str:
    if value >= 1_000_000:
        return f"{value / 1_000_000:.1f}M"
    if value >= 10_000:
        return f"{value // 1000}K"
    return str(value)


templates.filters["ago"] = _ago
templates.filters["count"] = _count


def wants_json(request: Request) -> bool:
    return "application/json" in request.headers.get("accept", "")


def safe_next(value: str | None, default: str = "/") -> str:
    """A same-site path to go back to; anything else becomes ``default``."""
    if not value:
        return default
    parts = urlsplit(value)
    if parts.scheme or parts.netloc or not value.startswith("/") or value.startswith("//"):
        return default
    # Browsers read "/\\host" as "//host": backslashes and control characters never pass.
    if "\\" in value or any(ord(c) < 32 for c in value):
        return default
    return value


def back(request: Request, next_path: str | None = None) -> RedirectResponse:
    referer = request.headers.get("referer", "")
    fallback = "/"
    if referer:
        parts = urlsplit(referer)
        if parts.netloc == request.headers.get("host"):
            fallback = parts.path + (f"?{parts.query}" if parts.query else "")
    return RedirectResponse(safe_next(next_path, fallback), status_code=303)


async def render(
    request: Request, name: str, *, status_code: int = 200, title: str = "", **context: Any
) -> HTMLResponse:
    viewer = await session_viewer(request)
    state = app_state(request)
    unread = 0
    if viewer.account is not None:
        async with state.db.read() as session:
            unread = await unread_count(session, viewer.account.id, limit=UNREAD_LIMIT)
    html = templates.get_template(name).render(
        request=request,
        me=viewer.account,
        csrf=LazyCsrf(request),
        unread=unread,
        settings=state.settings,
        instance_title=state.settings.instance_title,
        title=title,
        path=request.url.path,
        **context,
    )
    response = HTMLResponse(html, status_code=status_code, headers=PAGE_HEADERS)
    response.headers["Vary"] = "Cookie"
    cookie_pending = getattr(request.state, "csrf_cookie_pending", False)
    if viewer.account is None and not cookie_pending and status_code == 200:
        response.headers["Cache-Control"] = ANONYMOUS_CACHE
    issue_csrf(request, response)
    return response


def fragment(request: Request, name: str, **context: Any) -> str:
    return templates.get_template(name).render(
        request=request, csrf=LazyCsrf(request), settings=app_state(request).settings, **context
    )


async def error_page(request: Request, error: ApiError) -> Response:
    if wants_json(request):
        return error_response(error.status, error.message, error.headers)
    if error.status == 401 and request.method == "GET":
        target = quote(request.url.path + (f"?{request.url.query}" if request.url.query else ""))
        return RedirectResponse(f"/auth/sign_in?next={target}", status_code=303)
    titles = {401: "Please log in", 403: "Not allowed", 404: "Not found", 429: "Slow down"}
    response = await render(
        request,
        "error.html",
        status_code=error.status,
        title=titles.get(error.status, "Something went wrong"),
        message=error.message,
    )
    for key, value in (error.headers or {}).items():
        response.headers[key] = value
    return response


class WebRoute(APIRoute):
    """Errors raised by services leave web routes as pages (or JSON for scripts)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def guarded(request: Request) -> Response:
            try:
                return await handler(request)
            except ApiError as error:
                return await error_page(request, error)

        return guarded


async def require_login(request: Request) -> Viewer:
    viewer = await session_viewer(request)
    if viewer.account is None:
        raise ApiError(401, "Log in to see this page")
    return viewer
