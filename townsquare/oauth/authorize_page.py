"""``/oauth/authorize``: the login and consent page a browser sees during the code flow.

The form carries a CSRF token that must equal the one in a cookie signed with the instance key,
so another site cannot post a login (or a consent) in someone's name.
"""

from __future__ import annotations

import hmac
from typing import Any
from urllib.parse import urlsplit

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, PackageLoader

from townsquare.accounts.service import can_log_in, find_login
from townsquare.api.params import read_params
from townsquare.config import Settings
from townsquare.oauth.authorization import (
    AuthorizationProblem,
    AuthorizationRequest,
    check_authorization,
    with_query,
)
from townsquare.oauth.scopes import describe_scope
from townsquare.oauth.service import OOB, create_code
from townsquare.oauth.signing import new_csrf_token, sign, unsign
from townsquare.shield.logins import HashingBusy, login_retry_after, password_check
from townsquare.state import app_state

router = APIRouter()
templates = Environment(loader=PackageLoader("townsquare.oauth", "templates"), autoescape=True)

CSRF_COOKIE = "townsquare_csrf"
CSRF_PURPOSE = "oauth-csrf"
PAGE_HEADERS = {
    "Cache-Control": "no-store",
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; "
    "frame-ancestors 'none'",
}


def _page(name: str, settings: Settings, status: int = 200, **context: Any) -> HTMLResponse:
    html = templates.get_template(name).render(instance_title=settings.instance_title, **context)
    return HTMLResponse(html, status_code=status, headers=PAGE_HEADERS)


def _problem_response(problem: AuthorizationProblem, settings: Settings) -> Response:
    if problem.redirectable:
        return RedirectResponse(problem.location(), status_code=302)
    return _page(
        "problem.html", settings, 400, error=problem.error, description=problem.description
    )


def _csrf_from_cookie(request: Request, settings: Settings) -> str | None:
    cookie = request.cookies.get(CSRF_COOKIE)
    return unsign(settings, CSRF_PURPOSE, cookie) if cookie else None


def _consent_page(
    request: Request,
    authorization: AuthorizationRequest,
    *,
    status: int = 200,
    error: str | None = None,
    login: str = "",
) -> HTMLResponse:
    settings = app_state(request).settings
    csrf = _csrf_from_cookie(request, settings) or new_csrf_token()
    redirect = authorization.redirect_uri
    response = _page(
        "authorize.html",
        settings,
        status,
        app_name=authorization.app.name,
        app_website=authorization.app.website,
        scope_descriptions=[describe_scope(scope) for scope in authorization.scopes],
        fields=authorization.form_fields,
        csrf_token=csrf,
        error=error,
        login=login,
        redirect_host="this page" if redirect == OOB else urlsplit(redirect).netloc or redirect,
    )
    response.set_cookie(
        CSRF_COOKIE,
        sign(settings, CSRF_PURPOSE, csrf),
        path="/oauth",
        httponly=True,
        samesite="lax",
        secure=settings.public_url.startswith("https://"),
    )
    return response


@router.get("/oauth/authorize", include_in_schema=False)
async def authorize_page(request: Request) -> Response:
    state = app_state(request)
    params = await read_params(request)
    async with state.db.read() as session:
        try:
            authorization = await check_authorization(session, params)
        except AuthorizationProblem as problem:
            return _problem_response(problem, state.settings)
    return _consent_page(request, authorization)


@router.post("/oauth/authorize", include_in_schema=False)
async def authorize_decision(request: Request) -> Response:
    state = app_state(request)
    params = await read_params(request)
    sent_csrf = params.get("csrf_token")
    expected = _csrf_from_cookie(request, state.settings)
    if (
        not isinstance(sent_csrf, str)
        or expected is None
        or not hmac.compare_digest(sent_csrf.encode(), expected.encode())
    ):
        return _page(
            "problem.html",
            state.settings,
            403,
            error="invalid_csrf_token",
            description="This form has expired. Go back, reload the page and try again.",
        )
    async with state.db.read() as session:
        try:
            authorization = await check_authorization(session, params)
        except AuthorizationProblem as problem:
            return _problem_response(problem, state.settings)
        login = params.get("login")
        login = login if isinstance(login, str) else ""
        account = await find_login(session, login)

    if params.get("decision") != "allow":
        return _problem_response(
            AuthorizationProblem(
                "access_denied",
                "The resource owner or authorization server denied the request.",
                redirect_uri=authorization.redirect_uri,
                state=authorization.state,
            ),
            state.settings,
        )
    retry_after = await login_retry_after(state, login, account.id if account else None)
    if retry_after is not None:
        return _consent_page(
            request,
            authorization,
            status=429,
            error="Too many login attempts; try again later.",
            login=login,
        )
    password = params.get("password")
    try:
        async with password_check(state):
            allowed = await can_log_in(account, password if isinstance(password, str) else "")
    except HashingBusy:
        return _consent_page(
            request,
            authorization,
            status=503,
            error="Too many sign-ins right now; try again shortly.",
            login=login,
        )
    if not allowed:
        return _consent_page(
            request, authorization, status=401, error="Invalid login or password.", login=login
        )
    assert account is not None
    async with state.db.write() as session:
        code = await create_code(
            session,
            app=authorization.app,
            account_id=account.id,
            redirect_uri=authorization.redirect_uri,
            scopes=authorization.scopes,
            code_challenge=authorization.code_challenge,
            code_challenge_method=authorization.code_challenge_method,
        )
    if authorization.redirect_uri == OOB:
        return _page("code.html", state.settings, app_name=authorization.app.name, code=code)
    query = {"code": code}
    if authorization.state is not None:
        query["state"] = authorization.state
    return RedirectResponse(with_query(authorization.redirect_uri, query), status_code=302)
