"""Errors in the Mastodon API's shape: ``{"error": "..."}`` with the status code Mastodon uses."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from townsquare.api.responses import FastJSON

log = logging.getLogger("townsquare.errors")


class ApiError(Exception):
    """Raised anywhere below a route; becomes ``{"error": message}`` with ``status``."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        headers: dict[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers
        self.extra = extra


def not_found(what: str = "Record") -> ApiError:
    return ApiError(404, f"{what} not found")


def unprocessable(message: str) -> ApiError:
    return ApiError(422, f"Validation failed: {message}")


def forbidden(message: str = "This action is not allowed") -> ApiError:
    return ApiError(403, message)


def bad_request(message: str) -> ApiError:
    return ApiError(400, message)


def error_response(
    status: int, message: str, headers: dict[str, str] | None = None, **extra: Any
) -> JSONResponse:
    return FastJSON({"error": message, **extra}, status_code=status, headers=headers)


def _describe_validation(errors: list[Any]) -> str:
    parts = []
    for error in errors[:5]:
        loc = ".".join(str(p) for p in error.get("loc", ()) if p not in ("body", "query"))
        parts.append(f"{loc} {error.get('msg', 'is invalid')}".strip())
    return "; ".join(parts) or "invalid request"


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def _api_error(_request: Request, exc: ApiError) -> JSONResponse:
        return error_response(exc.status, exc.message, exc.headers, **exc.extra)

    @app.exception_handler(RequestValidationError)
    async def _validation(_request: Request, exc: RequestValidationError) -> JSONResponse:
        return error_response(422, f"Validation failed: {_describe_validation(list(exc.errors()))}")

    @app.exception_handler(StarletteHTTPException)
    async def _http(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        message = {404: "Record not found", 405: "Method not allowed"}.get(
            exc.status_code, str(exc.detail)
        )
        return error_response(exc.status_code, message, dict(exc.headers or {}))

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return error_response(500, "Internal server error")
