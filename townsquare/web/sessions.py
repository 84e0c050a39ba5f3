"""Browser sessions and CSRF tokens.

A session is an access token of the instance's own (no OAuth app) kept in an HttpOnly cookie,
so every rule that holds for tokens (revocation, suspension, expiry) holds for sessions, and
the streaming API can accept the cookie where a token would go. Forms and script requests
carry a CSRF token that must equal the signed one in a second cookie (double submit), and a
cross-site ``Origin`` is refused outright.
"""

from __future__ import annotations

import datetime as dt
import hmac

from sqlalchemy import select
from starlette.requests import HTTPConnection, Request
from starlette.responses import Response

from townsquare.accounts.models import Account
from townsquare.api.auth import ANONYMOUS, Viewer, _viewer_for_token
from townsquare.api.errors import ApiError
from townsquare.db.base import utcnow
from townsquare.oauth.models import OAuthToken
from townsquare.oauth.service import issue_token
from townsquare.oauth.signing import new_csrf_token, sign, unsign
from townsquare.oauth.tokens import digest
from townsquare.shield import standing
from townsquare.state import app_state

SESSION_COOKIE = standing.SESSION_COOKIE.decode()
CSRF_COOKIE = "townsquare_web_csrf"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"
CSRF_PURPOSE = "web-csrf"
SESSION_SCOPES = ["read", "write", "follow", "push"]
SESSION_LIFETIME = dt.timedelta(days=30)
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def is_https(connection: HTTPConnection) -> bool:
    return connection.url.scheme in ("https", "wss")


def set_cookie(response: Response, request: Request, name: str, value: str, max_age: int) -> None:
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        path="/",
        secure=is_https(request),
        httponly=True,
        samesite="lax",
    )


async def session_viewer(request: Request) -> Viewer:
    """Who the session cookie belongs to; anonymous when there is none or it is no longer good."""
    cached = getattr(request.state, "web_viewer", None)
    if isinstance(cached, Viewer):
        return cached
    viewer = ANONYMOUS
    raw = request.cookies.get(SESSION_COOKIE)
    if raw:
        try:
            viewer = await _viewer_for_token(request, raw)
        except ApiError:
            standing.reject(standing.token_digest(raw))
            viewer = ANONYMOUS
        else:
            if viewer.account is not None and viewer.app_id is None:
                # The shield serves this browser first from now on, without a database hit.
                standing.remember(standing.token_digest(raw), viewer.account.verified)
            else:
                viewer = ANONYMOUS
    request.state.web_viewer = viewer
    return viewer


async def start_session(request: Request, response: Response, account: Account) -> None:
    db = app_state(request).db
    async with db.write() as session:
        issued = await issue_token(
            session,
            app_id=None,
            account_id=account.id,
            scopes=SESSION_SCOPES,
            with_refresh=False,
            expires_in=SESSION_LIFETIME,
        )
    set_cookie(
        response,
        request,
        SESSION_COOKIE,
        issued.access_token,
        int(SESSION_LIFETIME.total_seconds()),
    )
    # A new CSRF token with every login, so one planted before it is worthless after.
    issue_csrf(request, response, fresh=True)


async def end_session(request: Request, response: Response) -> None:
    raw = request.cookies.get(SESSION_COOKIE)
    if raw:
        async with app_state(request).db.write() as session:
            token = await session.scalar(
                select(OAuthToken).where(OAuthToken.token_digest == digest(raw))
            )
            if token is not None and token.app_id is None and token.revoked_at is None:
                token.revoked_at = utcnow()
        standing.forget(standing.token_digest(raw))
    response.delete_cookie(SESSION_COOKIE, path="/", secure=is_https(request), httponly=True)


async def end_other_sessions(request: Request, account_id: int) -> None:
    """After a password change, every other browser of the account is logged out."""
    raw = request.cookies.get(SESSION_COOKIE) or ""
    keep = digest(raw)
    async with app_state(request).db.write() as session:
        tokens = await session.scalars(
            select(OAuthToken).where(
                OAuthToken.account_id == account_id,
                OAuthToken.app_id.is_(None),
                OAuthToken.revoked_at.is_(None),
                OAuthToken.token_digest != keep,
            )
        )
        for token in tokens:
            token.revoked_at = utcnow()


def csrf_token(request: Request) -> str:
    """The token this page's forms carry: the cookie's, or a new one set on the response."""
    current = getattr(request.state, "csrf_token", None)
    if isinstance(current, str):
        return current
    cookie = request.cookies.get(CSRF_COOKIE)
    settings = app_state(request).settings
    if cookie and unsign(settings, CSRF_PURPOSE, cookie):
        request.state.csrf_token = cookie
        return cookie
    token = sign(settings, CSRF_PURPOSE, new_csrf_token())
    request.state.csrf_token = token
    request.state.csrf_cookie_pending = True
    return token


def issue_csrf(request: Request, response: Response, *, fresh: bool = False) -> None:
    """Set the CSRF cookie on ``response`` when the page handed out a new token."""
    if fresh:
        request.state.csrf_token = None
        csrf_token(request)
    if getattr(request.state, "csrf_cookie_pending", False) or fresh:
        set_cookie(response, request, CSRF_COOKIE, request.state.csrf_token, 60 * 60 * 24 * 365)
        request.state.csrf_cookie_pending = False


def same_origin(connection: HTTPConnection) -> bool:
    """False when the browser says the request comes from another site."""
    origin = connection.headers.get("origin")
    if origin is None:
        return True
    host = connection.headers.get("host", "")
    return origin.split("://", 1)[-1] == host


def check_csrf(request: Request, submitted: str | None) -> None:
    """Refuse a state-changing request that does not carry this browser's CSRF token."""
    if not same_origin(request):
        raise ApiError(403, "Cross-site request refused")
    cookie = request.cookies.get(CSRF_COOKIE)
    settings = app_state(request).settings
    token = submitted or request.headers.get(CSRF_HEADER)
    if (
        not cookie
        or not token
        or not hmac.compare_digest(cookie, token)
        or unsign(settings, CSRF_PURPOSE, cookie) is None
    ):
        raise ApiError(403, "The form has expired or did not come from this site; reload the page")
