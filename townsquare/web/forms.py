"""Reading forms sent by the web app's pages: CSRF first, then the fields."""

from __future__ import annotations

from typing import Any

from fastapi import Request

from townsquare.api.errors import ApiError
from townsquare.api.params import read_params
from townsquare.media.uploads import FORM_OVERHEAD, CappedReceive, check_declared_length, too_large
from townsquare.web.sessions import CSRF_FIELD, CSRF_HEADER, check_csrf

SMALL_FORM_BYTES = 64 * 1024


async def read_form(request: Request, *, max_bytes: int = SMALL_FORM_BYTES) -> dict[str, Any]:
    """The submitted fields (files included), refused unless they carry the CSRF token.

    The body is capped at ``max_bytes`` (plus room for the form's own framing) while it is read,
    so an oversized upload is refused with 413 before it is buffered whole.
    """
    if request.headers.get(CSRF_HEADER):
        # Scripts send the token as a header: refuse a forgery before reading its body.
        check_csrf(request, None)
    check_declared_length(request.headers.get("content-length"), max_bytes)
    capped = CappedReceive(request.receive, max_bytes + FORM_OVERHEAD)
    bounded = Request(request.scope, receive=capped)
    try:
        params = await read_params(bounded)
    except ApiError:
        if capped.exceeded:
            raise too_large(max_bytes) from None
        raise
    request.state.form_request = bounded
    submitted = params.get(CSRF_FIELD)
    check_csrf(request, submitted if isinstance(submitted, str) and submitted else None)
    return params


async def close_form(request: Request) -> None:
    bounded = getattr(request.state, "form_request", None)
    if isinstance(bounded, Request):
        await bounded.close()


def text(params: dict[str, Any], name: str, default: str = "") -> str:
    value = params.get(name, default)
    return value if isinstance(value, str) else default
