"""How each API call is observed: its request id, its log context and access line, its latency
on `signoff_api_request_duration_seconds`, and (when tracing is on) its server span.

The request id is the caller's `X-Request-ID` when it is a plain token of at most 64
characters, a new one otherwise; it is sent back in `X-Request-ID` and is on every log line
written while the call is served (with the workflow id, once the call names one). The access
line names the method, the path without its query string (a query may carry an OIDC
authorization code), the route template, the status and the time taken; health probes and
scrapes are logged at DEBUG.
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from typing import Any

from fastapi import FastAPI
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.metrics import API_REQUEST_SECONDS, UNMATCHED_ROUTE, method_label
from workflows.logs import log_context
from workflows.tracing import tracing_enabled

REQUEST_ID_HEADER = "X-Request-ID"
_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")
QUIET_ROUTES = {"/healthz", "/readyz", "/metrics"}

access_log = logging.getLogger("api.access")


def request_id_of(scope: Scope) -> str:
    for name, value in scope.get("headers", ()):
        if name == b"x-request-id":
            candidate = value.decode("latin-1")
            if _REQUEST_ID.fullmatch(candidate):
                return candidate
            break
    return uuid.uuid4().hex


def route_template(scope: Scope) -> str:
    """The path template of the route that served the call (bounded), never the path."""
    route = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) and path else UNMATCHED_ROUTE


class ObservedRequests:
    """ASGI middleware, the outermost of the app's own: sees every answer, even the head-size
    refusals made before routing."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = request_id_of(scope)
        started = time.perf_counter()
        status = 500  # what the client gets if the app raises before answering

        async def answer(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                MutableHeaders(scope=message).append(REQUEST_ID_HEADER, request_id)
            await send(message)

        with log_context(request_id=request_id):
            try:
                await self.app(scope, receive, answer)
            finally:
                self._observe(scope, status, time.perf_counter() - started)

    @staticmethod
    def _observe(scope: Scope, status: int, elapsed: float) -> None:
        method = method_label(scope.get("method", ""))
        route = route_template(scope)
        API_REQUEST_SECONDS.labels(method, route, str(status)).observe(elapsed)
        level = logging.DEBUG if route in QUIET_ROUTES else logging.INFO
        access_log.log(
            level,
            "%s %s %d %.1f ms (route %s)",
            method,
            scope.get("path", ""),
            status,
            elapsed * 1000,
            route,
        )


def _span_without_query(span: Any, scope: dict[str, Any]) -> None:
    """The server span keeps the path, never the query string."""
    if span is None or not span.is_recording() or not scope.get("query_string"):
        return
    attributes = getattr(span, "attributes", None) or {}
    span.set_attribute("http.target", scope.get("path", ""))
    if "http.url" in attributes:
        span.set_attribute("http.url", str(attributes["http.url"]).split("?", 1)[0])
    if "url.query" in attributes:
        span.set_attribute("url.query", "[redacted]")


def observe(app: FastAPI) -> None:
    """Install the middleware, and FastAPI's instrumentation when tracing is on (after
    `workflows.tracing.setup_tracing`)."""
    app.add_middleware(ObservedRequests)
    if tracing_enabled():
        from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor  # tracing only

        FastAPIInstrumentor.instrument_app(
            app,
            server_request_hook=_span_without_query,
            excluded_urls="/healthz,/readyz,/metrics",
            exclude_spans=["receive", "send"],
        )
