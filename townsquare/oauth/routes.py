"""OAuth 2 over HTTP: app registration, the token and revocation endpoints, server metadata."""

from __future__ import annotations

import base64
import binascii
from typing import Any
from urllib.parse import unquote, urlsplit

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, Field, field_validator

from townsquare.api.auth import Viewer, app_or_user
from townsquare.api.errors import ApiError, unprocessable
from townsquare.api.params import parse, read_params
from townsquare.oauth import authorize_page
from townsquare.oauth.errors import invalid_client, invalid_request
from townsquare.oauth.grants import GRANT_TYPES, TokenRequest, grant_token
from townsquare.oauth.models import OAuthApp
from townsquare.oauth.scopes import ALL_SCOPES, parse_scopes
from townsquare.oauth.service import (
    OOB,
    app_redirect_uris,
    app_scopes,
    authenticate_client,
    register_app,
    revoke_token,
)
from townsquare.state import app_state

router = APIRouter()
router.include_router(authorize_page.router)

MAX_REDIRECT_URIS = 10


class AppForm(BaseModel):
    client_name: str = Field(min_length=1, max_length=200)
    redirect_uris: str | list[str]
    scopes: str = "read"
    website: str | None = Field(None, max_length=2000)

    @field_validator("client_name")
    @classmethod
    def _name_not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be blank")
        return value.strip()


def _redirect_uris(value: str | list[str]) -> list[str]:
    raw = value.split() if isinstance(value, str) else [str(v).strip() for v in value]
    uris = [uri for uri in raw if uri]
    if not uris:
        raise unprocessable("redirect_uris must not be empty")
    if len(uris) > MAX_REDIRECT_URIS:
        raise unprocessable(f"at most {MAX_REDIRECT_URIS} redirect_uris")
    for uri in uris:
        parts = urlsplit(uri)
        # Native apps register custom schemes (myapp://callback), so any absolute URI will do.
        if uri != OOB and (not parts.scheme or parts.fragment or len(uri) > 2000):
            raise unprocessable("redirect_uris must be absolute URIs without a fragment")
    return list(dict.fromkeys(uris))


def application_entity(app: OAuthApp, *, with_secret: bool = True) -> dict[str, Any]:
    uris = app_redirect_uris(app)
    entity: dict[str, Any] = {
        "id": str(app.id),
        "name": app.name,
        "website": app.website,
        "scopes": app_scopes(app),
        "redirect_uri": "\n".join(uris),
        "redirect_uris": uris,
        "vapid_key": "",
    }
    if with_secret:
        entity["client_id"] = app.client_id
        entity["client_secret"] = app.client_secret
        entity["client_secret_expires_at"] = 0
    return entity


def token_entity(
    access_token: str, scopes: str, created_at: int, refresh: str | None
) -> dict[str, Any]:
    entity: dict[str, Any] = {
        "access_token": access_token,
        "token_type": "Bearer",
        "scope": scopes,
        "created_at": created_at,
    }
    if refresh:
        entity["refresh_token"] = refresh
    return entity


@router.post("/api/v1/apps")
async def create_app(request: Request) -> dict[str, Any]:
    form = parse(AppForm, await read_params(request))
    uris = _redirect_uris(form.redirect_uris)
    try:
        scopes = parse_scopes(form.scopes)
    except ValueError as exc:
        raise unprocessable(str(exc)) from None
    async with app_state(request).db.write() as session:
        app = await register_app(session, form.client_name, uris, scopes, form.website or None)
    return application_entity(app)


@router.get("/api/v1/apps/verify_credentials")
async def verify_app(request: Request, viewer: Viewer = Depends(app_or_user())) -> dict[str, Any]:
    async with app_state(request).db.read() as session:
        app = await session.get(OAuthApp, viewer.app_id) if viewer.app_id else None
    if app is None:
        raise ApiError(401, "The access token is invalid")
    return application_entity(app, with_secret=False)


def _text(params: dict[str, Any], name: str) -> str | None:
    value = params.get(name)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise invalid_request(f"{name} must be a string.")
    return value


def _basic_credentials(request: Request) -> tuple[str, str] | None:
    scheme, _, encoded = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        raise invalid_client() from None
    client_id, colon, client_secret = decoded.partition(":")
    if not colon:
        raise invalid_client()
    # RFC 6749 section 2.3.1: both parts are form-urlencoded before being joined.
    return unquote(client_id.replace("+", " ")), unquote(client_secret.replace("+", " "))


def _client(request: Request, params: dict[str, Any]) -> tuple[str | None, str | None]:
    basic = _basic_credentials(request)
    if basic is not None:
        return basic
    return _text(params, "client_id"), _text(params, "client_secret")


@router.post("/oauth/token")
async def token(request: Request) -> dict[str, Any]:
    params = await read_params(request)
    client_id, client_secret = _client(request, params)
    grant_type = _text(params, "grant_type")
    if grant_type is None:
        raise invalid_request("grant_type is required.")
    issued = await grant_token(
        app_state(request),
        TokenRequest(
            grant_type=grant_type,
            client_id=client_id,
            client_secret=client_secret,
            code=_text(params, "code"),
            redirect_uri=_text(params, "redirect_uri"),
            code_verifier=_text(params, "code_verifier"),
            scope=_text(params, "scope") or _text(params, "scopes"),
            username=_text(params, "username"),
            password=_text(params, "password"),
            refresh_token=_text(params, "refresh_token"),
        ),
    )
    return token_entity(
        issued.access_token,
        issued.token.scopes,
        int(issued.token.created_at.timestamp()),
        issued.refresh_token,
    )


@router.post("/oauth/revoke")
async def revoke(request: Request) -> dict[str, Any]:
    params = await read_params(request)
    client_id, client_secret = _client(request, params)
    token_value = _text(params, "token")
    if token_value is None:
        raise invalid_request("token is required.")
    async with app_state(request).db.write() as session:
        try:
            app = await authenticate_client(session, client_id, client_secret)
        except ApiError:
            # Mastodon answers a revocation by the wrong client with 403 unauthorized_client.
            raise ApiError(
                403,
                "unauthorized_client",
                error_description="You are not authorized to revoke this token",
            ) from None
        await revoke_token(session, app, token_value)
    return {}


@router.get("/.well-known/oauth-authorization-server")
async def server_metadata(request: Request) -> dict[str, Any]:
    base = app_state(request).settings.public_url
    return {
        "issuer": f"{base}/",
        "service_documentation": "https://docs.joinmastodon.org/",
        "authorization_endpoint": f"{base}/oauth/authorize",
        "token_endpoint": f"{base}/oauth/token",
        "revocation_endpoint": f"{base}/oauth/revoke",
        "app_registration_endpoint": f"{base}/api/v1/apps",
        "scopes_supported": sorted(ALL_SCOPES),
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": list(GRANT_TYPES),
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
        "code_challenge_methods_supported": ["S256"],
    }
