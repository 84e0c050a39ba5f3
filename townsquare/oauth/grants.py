"""The token endpoint's grants: authorization code (with PKCE), password, client credentials and
refresh token.

Password checks run between a read and a write transaction, so the slow hash never holds the
database's single writer (on SQLite) while it runs.
"""

from __future__ import annotations

from dataclasses import dataclass

from townsquare.accounts.service import can_log_in, find_login
from townsquare.api.errors import ApiError
from townsquare.oauth.errors import invalid_grant, invalid_request, oauth_error
from townsquare.oauth.service import (
    IssuedToken,
    authenticate_client,
    issue_token,
    redeem_code,
    refresh_token,
    requested_scopes,
)
from townsquare.shield.logins import HashingBusy, login_retry_after, password_check
from townsquare.state import AppState

GRANT_TYPES = ("authorization_code", "password", "client_credentials", "refresh_token")


@dataclass(frozen=True)
class TokenRequest:
    grant_type: str
    client_id: str | None = None
    client_secret: str | None = None
    code: str | None = None
    redirect_uri: str | None = None
    code_verifier: str | None = None
    scope: str | None = None
    username: str | None = None
    password: str | None = None
    refresh_token: str | None = None


async def grant_token(state: AppState, request: TokenRequest) -> IssuedToken:
    if request.grant_type not in GRANT_TYPES:
        raise oauth_error(
            "unsupported_grant_type",
            "The authorization grant type is not supported by the authorization server.",
        )
    if request.grant_type == "authorization_code":
        return await _authorization_code(state, request)
    if request.grant_type == "password":
        return await _password(state, request)
    if request.grant_type == "client_credentials":
        async with state.db.write() as session:
            app = await authenticate_client(session, request.client_id, request.client_secret)
            scopes = requested_scopes(app, request.scope)
            return await issue_token(session, app_id=app.id, account_id=None, scopes=scopes)
    if not request.refresh_token:
        raise invalid_request("refresh_token is required.")
    async with state.db.write() as session:
        app = await authenticate_client(session, request.client_id, request.client_secret)
        return await refresh_token(session, app, request.refresh_token, request.scope)


async def _authorization_code(state: AppState, request: TokenRequest) -> IssuedToken:
    if not request.code:
        raise invalid_request("code is required.")
    async with state.db.write() as session:
        app = await authenticate_client(session, request.client_id, request.client_secret)
        return await redeem_code(
            session, app, request.code, request.redirect_uri, request.code_verifier
        )


async def _password(state: AppState, request: TokenRequest) -> IssuedToken:
    if not request.username or request.password is None:
        raise invalid_request("username and password are required.")
    async with state.db.read() as session:
        app = await authenticate_client(session, request.client_id, request.client_secret)
        scopes = requested_scopes(app, request.scope)
        account = await find_login(session, request.username)
    retry_after = await login_retry_after(
        state, request.username, account.id if account is not None else None
    )
    if retry_after is not None:
        raise ApiError(
            429,
            "Too many login attempts; try again later",
            headers={"Retry-After": str(retry_after)},
        )
    try:
        async with password_check(state):
            allowed = await can_log_in(account, request.password)
    except HashingBusy:
        raise ApiError(
            503, "Too many sign-ins right now; try again shortly", headers={"Retry-After": "2"}
        ) from None
    if not allowed:
        raise invalid_grant(
            "The provided authorization grant is invalid, expired, revoked, does not match "
            "the redirection URI used in the authorization request, or was issued to another "
            "client."
        )
    assert account is not None
    async with state.db.write() as session:
        return await issue_token(session, app_id=app.id, account_id=account.id, scopes=scopes)
