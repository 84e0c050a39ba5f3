"""OAuth errors in RFC 6749's shape: ``{"error": "invalid_grant", "error_description": "..."}``."""

from __future__ import annotations

from townsquare.api.errors import ApiError


def oauth_error(error: str, description: str, *, status: int = 400) -> ApiError:
    headers = {"WWW-Authenticate": 'Basic realm="townsquare"'} if status == 401 else None
    return ApiError(status, error, headers=headers, error_description=description)


def invalid_client() -> ApiError:
    return oauth_error(
        "invalid_client",
        "Client authentication failed due to unknown client, no client authentication "
        "included, or unsupported authentication method.",
        status=401,
    )


def invalid_grant(description: str) -> ApiError:
    return oauth_error("invalid_grant", description)


def invalid_request(description: str) -> ApiError:
    return oauth_error("invalid_request", description)


def invalid_scope(
    description: str = "The requested scope is invalid, unknown, or malformed.",
) -> ApiError:
    return oauth_error("invalid_scope", description)
