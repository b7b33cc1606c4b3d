"""The FastAPI application factory."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from api.auth import TokenVerifier
from api.deps import Services
from api.draining import RefuseWhileDraining, draining
from api.errors import document_errors, error_response, install_error_handlers
from api.front_door import FrontDoor
from api.observability import observe
from api.rate_limit import RateLimiter
from api.routers import (
    activities,
    audit,
    break_glass,
    break_glass_reviews,
    ci,
    comments,
    decision_hooks,
    evidence,
    github_hooks,
    health,
    inbound_messages,
    metrics,
    mlflow_hooks,
    mlflow_ui,
    policy,
    reconciler,
    registry_webhooks,
    rollback,
    slack_hooks,
    slack_messages,
    transition_request_reads,
    transition_requests,
    webhook_deliveries,
)
from api.routers.front_door import install as install_front_door
from api.routers.web import router as web_router
from api.routers.web_api import router as web_api_router
from api.routers.web_auth import router as web_auth_router
from api.settings import ApiSettings
from policies import load_policy, policy_hash
from workflows.domain import now_ms
from workflows.ledger import Ledger
from workflows.mlflow_client import MlflowRegistry
from workflows.startup import ready_ledger

MAX_AUTHORIZATION_BYTES = 8 * 1024
"""The largest `Authorization` header (a bearer token) the API reads; longer is 401."""
MAX_REQUEST_HEAD_BYTES = 16 * 1024
"""The largest request line plus headers the API reads; larger is 431."""


class HeadSizeLimit:
    """ASGI middleware refusing an oversized request head before anything parses it (no
    routing, no JSON, no JWT): 401 UNAUTHENTICATED for an `Authorization` header over
    `MAX_AUTHORIZATION_BYTES`, 431 (INVALID_PARAMETER_VALUE) for a request line plus headers
    over `MAX_REQUEST_HEAD_BYTES`; both in MLflow's error shape. Counted as on the wire: method,
    target and version, and each header's name, value and separators."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        target = scope.get("raw_path") or scope["path"].encode()
        size = len(scope.get("method", "GET")) + len(target) + len(scope["query_string"]) + 12
        authorization = 0
        for name, value in scope["headers"]:
            size += len(name) + len(value) + 4
            if name == b"authorization":
                authorization = max(authorization, len(value))
        if size > MAX_REQUEST_HEAD_BYTES:
            message = f"the request line and headers are larger than {MAX_REQUEST_HEAD_BYTES} bytes"
            # Not REQUEST_LIMIT_EXCEEDED: clients (the Databricks SDK) retry that one.
            body = {"error_code": "INVALID_PARAMETER_VALUE", "message": message}
            response = JSONResponse(status_code=431, content=body)
        elif authorization > MAX_AUTHORIZATION_BYTES:
            response = error_response(
                401,
                f"the Authorization header is larger than {MAX_AUTHORIZATION_BYTES} bytes; "
                "send a bearer token no longer than that",
            )
        else:
            await self.app(scope, receive, send)
            return
        if scope["type"] == "http":
            await response(scope, receive, send)
        else:
            await send({"type": "websocket.close", "code": 1009})


def create_app(settings: ApiSettings | None = None) -> FastAPI:
    settings = settings or ApiSettings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        policy = load_policy(settings.resolved_policy_file)
        ledger = Ledger(settings.database_url or "")
        await ready_ledger(settings, ledger, stop=draining(app))
        # Kept by hash for the evidence packets: every request opened here pins this policy.
        await ledger.policies.remember(
            policy_hash(policy), policy.model_dump(mode="json"), now_ms()
        )
        async with (
            MlflowRegistry.from_settings(settings) as registry,
            FrontDoor.open(settings) as app.state.front_door,
        ):
            app.state.services = Services(
                settings=settings,
                policy=policy,
                policy_hash=policy_hash(policy),
                verifier=TokenVerifier(settings, policy),
                ledger=ledger,
                registry=registry,
                draining=draining(app),
                rate_limiter=RateLimiter.from_settings(settings),
            )
            yield
        ledger.dispose()

    app = FastAPI(
        title="Signoff",
        version="0.1.0",
        description="Governed, audited MLflow registry transitions.",
        lifespan=lifespan,
    )
    install_error_handlers(app)
    app.add_middleware(RefuseWhileDraining)
    app.add_middleware(HeadSizeLimit)
    observe(app)  # outermost: request ids, access lines, latency, traces
    for router in (
        health.router,
        metrics.router,
        transition_requests.router,
        break_glass.router,
        rollback.router,
        break_glass_reviews.router,
        transition_request_reads.router,
        evidence.router,
        activities.router,
        ci.router,
        comments.router,
        registry_webhooks.router,
        webhook_deliveries.router,
        decision_hooks.router,
        github_hooks.router,
        inbound_messages.router,
        mlflow_hooks.router,
        slack_hooks.router,
        slack_messages.router,
        reconciler.router,
        audit.router,
        policy.router,
        web_router,
        web_auth_router,
        web_api_router,
        mlflow_ui.router,
    ):
        app.include_router(router)
    install_front_door(app)  # Signoff's own routes under MLflow's prefixes win
    document_errors(app)
    return app
