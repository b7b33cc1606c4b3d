"""MLflow's error shape, `{"error_code": ..., "message": ...}`, for every failure the API
returns, including validation errors and unknown routes; the one place a service's domain error
(`api.services.errors`) becomes an HTTP status, and where the OpenAPI document learns which
errors the routes answer."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import BaseRoute, Match

from api.models.errors import ErrorResponse
from api.services.errors import (
    Conflict,
    Invalid,
    NotFound,
    Refused,
    ServiceError,
    Unavailable,
    UpstreamFailed,
)
from workflows.client import DecisionNotAccepted, DecisionPending, TemporalUnavailable
from workflows.ledger import LedgerUnavailable

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
    def __init__(
        self,
        status: int,
        message: str,
        *,
        headers: Mapping[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.error_code = _CODE_FOR_STATUS.get(status, "INTERNAL_ERROR")
        self.message = message
        self.headers = dict(headers or {})
        self.extra = extra


def bad_request(message: str) -> ApiError:
    return ApiError(400, message)


def not_found(message: str) -> ApiError:
    return ApiError(404, message)


def forbidden(message: str) -> ApiError:
    return ApiError(403, message)


_STATUS_FOR: tuple[tuple[type[ServiceError], int], ...] = (
    (Invalid, 400),
    (Refused, 403),
    (NotFound, 404),
    (Conflict, 409),
    (UpstreamFailed, 502),
    (Unavailable, 503),
)
"""Each kind of domain error and the status it answers with: the only such mapping."""


RETRY_AFTER_S = 5
"""What a 503 (a dependency down) and a 429 tell the client to wait before retrying."""


def to_api_error(err: ServiceError) -> ApiError:
    status = next((status for kind, status in _STATUS_FOR if isinstance(err, kind)), 500)
    details = err.details
    if isinstance(err, Unavailable | UpstreamFailed):
        details = {"dependency": err.which, **details}
    return ApiError(status, err.message, **details)


def temporal_failure(err: Exception) -> Unavailable:
    """What the Transitions facade's availability errors mean to a caller: which dependency,
    and whether a decision is recorded."""
    if isinstance(err, DecisionNotAccepted):
        return Unavailable(str(err), which="worker", details={"recorded": False})
    if isinstance(err, DecisionPending):
        return Unavailable(str(err), which="worker", details={"recorded": True})
    return Unavailable(str(err), which="temporal")


@contextmanager
def as_api_error() -> Iterator[None]:
    """Re-raise a domain error as its `ApiError`, for code that records the status itself
    (the inbound webhooks record how each message ended)."""
    try:
        yield
    except ServiceError as err:
        raise to_api_error(err) from err
    except (TemporalUnavailable, DecisionNotAccepted, DecisionPending) as err:
        raise to_api_error(temporal_failure(err)) from err
    except LedgerUnavailable as err:
        raise to_api_error(Unavailable(str(err), which="ledger")) from err


def error_response(
    status: int, message: str, *, headers: Mapping[str, str] | None = None, **extra: Any
) -> JSONResponse:
    body = {"error_code": _CODE_FOR_STATUS.get(status, "INTERNAL_ERROR"), "message": message}
    headers = dict(headers or {})
    if status == 401:
        headers["WWW-Authenticate"] = "Bearer"
    if status in (429, 503):
        headers.setdefault("Retry-After", str(RETRY_AFTER_S))
    return JSONResponse(status_code=status, content={**body, **extra}, headers=headers or None)


def leaf_routes(routes: Iterable[BaseRoute]) -> Iterator[BaseRoute]:
    """Every route the app serves, with its full path: FastAPI (0.165) keeps an included router
    as one entry whose routes it resolves on demand, so walk into those."""
    for route in routes:
        contexts = getattr(route, "effective_route_contexts", None)
        if contexts is None:
            yield route
            continue
        for context in contexts():
            yield context.starlette_route or context.original_route


def allowed_methods(request: Request) -> list[str]:
    """The methods the app serves on the request's path, across every route that matches it
    (a Starlette route lists HEAD with GET; an APIRoute only what it declares)."""
    methods: set[str] = set()
    for route in leaf_routes(request.app.router.routes):
        match, _ = route.matches(request.scope)
        if match is not Match.NONE:
            methods |= set(getattr(route, "methods", None) or ())
    return sorted(methods)


def method_not_allowed(request: Request) -> JSONResponse:
    """405 in MLflow's shape (ENDPOINT_NOT_FOUND: MLflow's code for a call no endpoint serves),
    with the `Allow` header RFC 9110 requires."""
    allowed = allowed_methods(request)
    return error_response(
        405,
        f"{request.method} is not allowed on {request.url.path}; it answers {', '.join(allowed)}",
        headers={"Allow": ", ".join(allowed)},
    )


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
        reason = str(error.get("msg", "invalid")).removeprefix("Value error, ")
        parts.append(f"{where or 'request'}: {reason}")
    return "; ".join(parts)


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def _api_error(_request: Request, exc: ApiError) -> JSONResponse:
        return error_response(exc.status, exc.message, headers=exc.headers, **exc.extra)

    @app.exception_handler(ServiceError)
    async def _service_error(_request: Request, exc: ServiceError) -> JSONResponse:
        err = to_api_error(exc)
        return error_response(err.status, err.message, **err.extra)

    @app.exception_handler(TemporalUnavailable)
    @app.exception_handler(DecisionNotAccepted)
    @app.exception_handler(DecisionPending)
    async def _temporal(_request: Request, exc: Exception) -> JSONResponse:
        err = to_api_error(temporal_failure(exc))
        return error_response(err.status, err.message, **err.extra)

    @app.exception_handler(LedgerUnavailable)
    async def _ledger(_request: Request, exc: LedgerUnavailable) -> JSONResponse:
        log.warning("ledger unavailable: %s", exc)
        err = to_api_error(Unavailable(str(exc), which="ledger"))
        return error_response(err.status, err.message, **err.extra)

    @app.exception_handler(RequestValidationError)
    async def _validation(_request: Request, exc: RequestValidationError) -> JSONResponse:
        return error_response(400, _describe(list(exc.errors())))

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 404:
            return error_response(404, "no such endpoint; see /docs for the API")
        if exc.status_code == 405:
            return method_not_allowed(request)
        return error_response(exc.status_code, str(exc.detail), headers=exc.headers)

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


# --------------------------------------------------------------------------------------------
# The OpenAPI document
# --------------------------------------------------------------------------------------------

_ERROR_DESCRIPTIONS = {
    400: "INVALID_PARAMETER_VALUE: a malformed request (validation errors included), or one "
    "the current state does not allow",
    401: "UNAUTHENTICATED: no valid credentials",
    403: "PERMISSION_DENIED: the principal or the policy does not allow it",
    404: "RESOURCE_DOES_NOT_EXIST: what the request names does not exist",
    409: "RESOURCE_ALREADY_EXISTS: it collides with something that exists or is under way",
    502: "INTERNAL_ERROR: MLflow answered with an error",
    503: "TEMPORARILY_UNAVAILABLE: MLflow, Temporal or the ledger's database cannot be reached "
    "just now (`dependency` says which)",
}
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorResponse, "description": description}
    for status, description in _ERROR_DESCRIPTIONS.items()
}
"""The error answers, for routes' `responses=` (pick with `error_responses`)."""


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    return {status: ERROR_RESPONSES[status] for status in statuses}


def document_errors(app: FastAPI) -> None:
    """Validation errors answer 400 (above), never FastAPI's 422: leave 422 and its schemas
    out of the OpenAPI document."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = generate()
            for operations in schema.get("paths", {}).values():
                for operation in operations.values():
                    operation.get("responses", {}).pop("422", None)
            schemas = schema.get("components", {}).get("schemas", {})
            for name in ("HTTPValidationError", "ValidationError"):
                schemas.pop(name, None)
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
