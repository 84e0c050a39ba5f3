"""Checking an authorization request (``/oauth/authorize``) before anyone is asked to log in.

Problems with the client or its redirect URI are shown on the page and never redirected (an
attacker could otherwise bounce people to any address); other problems go back to the client as
``?error=...`` on its registered redirect URI, as RFC 6749 section 4.1.2.1 asks.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import urlencode, urlsplit, urlunsplit

from sqlalchemy.ext.asyncio import AsyncSession

from townsquare.oauth.models import OAuthApp
from townsquare.oauth.scopes import parse_scopes, subset
from townsquare.oauth.service import CHALLENGE_METHODS, OOB, app_redirect_uris, app_scopes, find_app

_CHALLENGE = re.compile(r"^[A-Za-z0-9._~-]{43,128}$")


@dataclass(frozen=True)
class AuthorizationRequest:
    app: OAuthApp
    redirect_uri: str
    scopes: list[str]
    state: str | None
    code_challenge: str | None
    code_challenge_method: str | None

    @property
    def form_fields(self) -> dict[str, str]:
        """What the consent form sends back, so the POST is checked exactly like the GET."""
        fields = {
            "response_type": "code",
            "client_id": self.app.client_id,
            "redirect_uri": self.redirect_uri,
            "scope": " ".join(self.scopes),
        }
        if self.state is not None:
            fields["state"] = self.state
        if self.code_challenge:
            fields["code_challenge"] = self.code_challenge
            fields["code_challenge_method"] = self.code_challenge_method or "plain"
        return fields


class AuthorizationProblem(Exception):
    def __init__(
        self, error: str, description: str, *, redirect_uri: str | None, state: str | None
    ) -> None:
        super().__init__(description)
        self.error = error
        self.description = description
        self.redirect_uri = redirect_uri
        self.state = state

    @property
    def redirectable(self) -> bool:
        return self.redirect_uri is not None and self.redirect_uri != OOB

    def location(self) -> str:
        assert self.redirect_uri is not None
        params = {"error": self.error, "error_description": self.description}
        if self.state is not None:
            params["state"] = self.state
        return with_query(self.redirect_uri, params)


def with_query(uri: str, params: dict[str, str]) -> str:
    parts = urlsplit(uri)
    query = "&".join(filter(None, [parts.query, urlencode(params)]))
    return urlunsplit((parts.scheme, parts.netloc, parts.path, query, parts.fragment))


def _text(params: dict[str, object], name: str) -> str | None:
    value = params.get(name)
    return value if isinstance(value, str) and value != "" else None


async def check_authorization(
    session: AsyncSession, params: dict[str, object]
) -> AuthorizationRequest:
    state = _text(params, "state")
    app = await find_app(session, _text(params, "client_id") or "")
    if app is None:
        raise AuthorizationProblem(
            "invalid_client", "The application is unknown.", redirect_uri=None, state=state
        )
    registered = app_redirect_uris(app)
    redirect_uri = _text(params, "redirect_uri")
    if redirect_uri is None and len(registered) == 1:
        redirect_uri = registered[0]
    if redirect_uri is None or redirect_uri not in registered:
        raise AuthorizationProblem(
            "invalid_redirect_uri",
            "The redirect URI is not one the application registered.",
            redirect_uri=None,
            state=state,
        )

    def problem(error: str, description: str) -> AuthorizationProblem:
        return AuthorizationProblem(error, description, redirect_uri=redirect_uri, state=state)

    if _text(params, "response_type") != "code":
        raise problem("unsupported_response_type", "Only response_type=code is supported.")
    try:
        scopes = parse_scopes(_text(params, "scope") or _text(params, "scopes"))
    except ValueError as exc:
        raise problem("invalid_scope", str(exc)) from None
    if not subset(scopes, app_scopes(app)):
        raise problem(
            "invalid_scope", "The requested scope exceeds what the application registered."
        )
    challenge = _text(params, "code_challenge")
    method = _text(params, "code_challenge_method")
    if challenge is not None:
        method = method or "plain"
        if method not in CHALLENGE_METHODS:
            raise problem("invalid_request", "code_challenge_method must be S256 or plain.")
        if not _CHALLENGE.match(challenge):
            raise problem("invalid_request", "code_challenge is malformed.")
    elif method is not None:
        raise problem("invalid_request", "code_challenge_method needs a code_challenge.")
    return AuthorizationRequest(
        app=app,
        redirect_uri=redirect_uri,
        scopes=scopes,
        state=state,
        code_challenge=challenge,
        code_challenge_method=method if challenge else None,
    )
