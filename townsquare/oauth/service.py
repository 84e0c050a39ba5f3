"""OAuth applications, authorization codes and tokens. No web framework here."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
from dataclasses import dataclass

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from townsquare.db.base import utcnow
from townsquare.ids import new_id
from townsquare.oauth.errors import invalid_client, invalid_grant, invalid_request, invalid_scope
from townsquare.oauth.models import OAuthApp, OAuthCode, OAuthToken
from townsquare.oauth.scopes import parse_scopes, subset
from townsquare.oauth.tokens import digest, mint_secret

OOB = "urn:ietf:wg:oauth:2.0:oob"
CODE_LIFETIME = dt.timedelta(minutes=10)
CHALLENGE_METHODS = ("S256", "plain")


@dataclass(frozen=True)
class IssuedToken:
    token: OAuthToken
    access_token: str
    refresh_token: str | None


def app_redirect_uris(app: OAuthApp) -> list[str]:
    return [uri for uri in app.redirect_uris.split("\n") if uri]


def app_scopes(app: OAuthApp) -> list[str]:
    return app.scopes.split()


async def register_app(
    session: AsyncSession,
    name: str,
    redirect_uris: list[str],
    scopes: list[str],
    website: str | None = None,
) -> OAuthApp:
    app = OAuthApp(
        id=new_id(),
        name=name,
        website=website,
        redirect_uris="\n".join(redirect_uris),
        scopes=" ".join(scopes),
        client_id=mint_secret(),
        client_secret=mint_secret(),
    )
    session.add(app)
    await session.flush()
    return app


async def find_app(session: AsyncSession, client_id: str) -> OAuthApp | None:
    if not client_id:
        return None
    return await session.scalar(select(OAuthApp).where(OAuthApp.client_id == client_id))


async def authenticate_client(
    session: AsyncSession, client_id: str | None, client_secret: str | None
) -> OAuthApp:
    """The app these credentials belong to, or an ``invalid_client`` error (401)."""
    app = await find_app(session, client_id or "")
    if app is None or client_secret is None:
        raise invalid_client()
    if not hmac.compare_digest(app.client_secret.encode(), client_secret.encode()):
        raise invalid_client()
    return app


def requested_scopes(app: OAuthApp, scope: str | None) -> list[str]:
    """The scopes asked for (``read`` when none), which the app must have registered."""
    try:
        scopes = parse_scopes(scope)
    except ValueError as exc:
        raise invalid_scope(str(exc)) from None
    if not subset(scopes, app_scopes(app)):
        raise invalid_scope("The requested scope exceeds the scopes the application registered.")
    return scopes


async def issue_token(
    session: AsyncSession,
    *,
    app_id: int | None,
    account_id: int | None,
    scopes: list[str],
    with_refresh: bool = True,
    expires_in: dt.timedelta | None = None,
) -> IssuedToken:
    access = mint_secret()
    refresh = mint_secret() if with_refresh and account_id is not None else None
    token = OAuthToken(
        id=new_id(),
        token_digest=digest(access),
        refresh_digest=digest(refresh) if refresh else None,
        app_id=app_id,
        account_id=account_id,
        scopes=" ".join(scopes),
        created_at=utcnow(),
        expires_at=(utcnow() + expires_in) if expires_in else None,
    )
    session.add(token)
    await session.flush()
    return IssuedToken(token=token, access_token=access, refresh_token=refresh)


def challenge_matches(challenge: str, method: str, verifier: str) -> bool:
    if method == "S256":
        hashed = hashlib.sha256(verifier.encode()).digest()
        expected = base64.urlsafe_b64encode(hashed).decode().rstrip("=")
    else:
        expected = verifier
    return hmac.compare_digest(expected.encode(), challenge.encode())


async def create_code(
    session: AsyncSession,
    *,
    app: OAuthApp,
    account_id: int,
    redirect_uri: str,
    scopes: list[str],
    code_challenge: str | None,
    code_challenge_method: str | None,
) -> str:
    code = mint_secret()
    session.add(
        OAuthCode(
            code_digest=digest(code),
            app_id=app.id,
            account_id=account_id,
            redirect_uri=redirect_uri,
            scopes=" ".join(scopes),
            code_challenge=code_challenge,
            code_challenge_method=(code_challenge_method or "plain") if code_challenge else None,
            expires_at=utcnow() + CODE_LIFETIME,
        )
    )
    await session.flush()
    return code


async def redeem_code(
    session: AsyncSession,
    app: OAuthApp,
    code: str,
    redirect_uri: str | None,
    code_verifier: str | None,
) -> IssuedToken:
    """Exchange a code for a token, once. PKCE is checked when the code was issued with it."""
    row = await session.scalar(select(OAuthCode).where(OAuthCode.code_digest == digest(code)))
    if row is None or row.app_id != app.id or row.used_at is not None:
        raise invalid_grant("The authorization code is invalid, expired or already used.")
    if row.expires_at <= utcnow():
        raise invalid_grant("The authorization code is invalid, expired or already used.")
    if redirect_uri is not None and redirect_uri != row.redirect_uri:
        raise invalid_grant("The redirect_uri does not match the one the code was issued for.")
    if row.code_challenge is not None:
        if not code_verifier:
            raise invalid_request("code_verifier is required.")
        if not challenge_matches(
            row.code_challenge, row.code_challenge_method or "", code_verifier
        ):
            raise invalid_grant("The code_verifier does not match the code_challenge.")
    # A conditional update makes "once" hold on PostgreSQL too, where two requests can race.
    claimed = await session.execute(
        update(OAuthCode)
        .where(OAuthCode.code_digest == row.code_digest, OAuthCode.used_at.is_(None))
        .values(used_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    if getattr(claimed, "rowcount", 0) != 1:
        raise invalid_grant("The authorization code is invalid, expired or already used.")
    return await issue_token(
        session, app_id=app.id, account_id=row.account_id, scopes=row.scopes.split()
    )


async def refresh_token(
    session: AsyncSession, app: OAuthApp, refresh: str, scope: str | None
) -> IssuedToken:
    """A new token for a refresh token; the old token stops working. Scopes may only narrow."""
    old = await session.scalar(
        select(OAuthToken).where(OAuthToken.refresh_digest == digest(refresh))
    )
    if old is None or old.app_id != app.id or old.revoked_at is not None:
        raise invalid_grant("The refresh token is invalid.")
    granted = old.scopes.split()
    scopes = granted
    if scope:
        try:
            scopes = parse_scopes(scope)
        except ValueError as exc:
            raise invalid_scope(str(exc)) from None
        if not subset(scopes, granted):
            raise invalid_scope("The requested scope exceeds the scope granted earlier.")
    old.revoked_at = utcnow()
    return await issue_token(session, app_id=app.id, account_id=old.account_id, scopes=scopes)


async def revoke_token(session: AsyncSession, app: OAuthApp, token: str) -> None:
    """Revoke an access or refresh token of this app; unknown tokens are ignored (RFC 7009)."""
    found = await session.scalar(
        select(OAuthToken).where(
            (OAuthToken.token_digest == digest(token))
            | (OAuthToken.refresh_digest == digest(token))
        )
    )
    if found is not None and found.app_id == app.id and found.revoked_at is None:
        found.revoked_at = utcnow()
