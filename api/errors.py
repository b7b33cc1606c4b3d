"""MLflow's error shape, `{"error_code": ..., "message": ...}`, for every failure the API
returns, including validation errors and unknown routes."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

log = logging.getLogger(__name__)

_CODE_FOR_STATUS = {
    400: "INVALID_PARAMETER_VALUE",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "RESOURCE_DOES_NOT_EXIST",
    405: "ENDPOINT_NOT_FOUND",
    409: "RESOURCE_ALREADY_EXISTS",
    429: "REQUEST_LIMIT_EXCEEDED",
    503: "TEMPORARILY_UNAVAILABLE",
}


class ApiError(Exception):
    def __init__(self, status: int, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.status = status
        self.error_code = _CODE_FOR_STATUS.get(status, "INTERNAL_ERROR")
        self.message = message
        self.extra = extra


def bad_request(message: str) -> ApiError:
    return ApiError(400, message)


def not_found(message: str) -> ApiError:
    return ApiError(404, message)


def forbidden(message: str) -> ApiError:
    return ApiError(403, message)


def error_response(status: int, message: str, **extra: Any) -> JSONResponse:
    body = {"error_code": _CODE_FOR_STATUS.get(status, "INTERNAL_ERROR"), "message": message}
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return JSONResponse(status_code=status, content={**body, **extra}, headers=headers)


def _describe(errors: list[dict[str, Any]]) -> str:
    parts = []
    for error in errors:
        if error.get("type") == "json_invalid":
            # loc is ("body", <character offset>); name the problem, not a field "1".
            offset = error.get("loc", ("body", "?"))[-1]
            reason = (error.get("ctx") or {}).get("error", "invalid JSON")
            parts.append(f"the request body is not valid JSON: {reason} (at character {offset})")
            continue
        where = ".".join(
            str(part) for part in error.get("loc", ()) if part not in ("body", "query")
        )
        parts.append(f"{where or 'request'}: {error.get('msg', 'invalid')}")
    return "; ".join(parts)


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def _api_error(_request: Request, exc: ApiError) -> JSONResponse:
        return error_response(exc.status, exc.message, **exc.extra)

    @app.exception_handler(RequestValidationError)
    async def _validation(_request: Request, exc: RequestValidationError) -> JSONResponse:
        return error_response(400, _describe(list(exc.errors())))

    @app.exception_handler(StarletteHTTPException)
    async def _http(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 404:
            return error_response(404, "no such endpoint; see /docs for the API")
        return error_response(exc.status_code, str(exc.detail))

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error on %s %s", request.method, request.url.path)
        return JSONResponse(
            status_code=500,
            content={
                "error_code": "INTERNAL_ERROR",
                "message": "internal error; see the server log",
            },
        )
