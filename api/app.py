"""The FastAPI application factory."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from api.auth import TokenVerifier
from api.deps import Services
from api.errors import document_errors, install_error_handlers
from api.routers import (
    activities,
    break_glass,
    ci,
    comments,
    decision_hooks,
    health,
    inbound_messages,
    mlflow_hooks,
    reconciler,
    registry_webhooks,
    transition_request_reads,
    transition_requests,
    webhook_deliveries,
)
from api.routers.web import router as web_router
from api.settings import ApiSettings
from policies import load_policy, policy_hash
from workflows.ledger import Ledger
from workflows.mlflow_client import MlflowRegistry


def create_app(settings: ApiSettings | None = None) -> FastAPI:
    settings = settings or ApiSettings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        policy = load_policy(settings.resolved_policy_file)
        ledger = Ledger(settings.database_url or "")
        await ledger.migrate()
        async with MlflowRegistry.from_settings(settings) as registry:
            app.state.services = Services(
                settings=settings,
                policy=policy,
                policy_hash=policy_hash(policy),
                verifier=TokenVerifier(settings, policy),
                ledger=ledger,
                registry=registry,
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
    for router in (
        health.router,
        transition_requests.router,
        break_glass.router,
        transition_request_reads.router,
        activities.router,
        ci.router,
        comments.router,
        registry_webhooks.router,
        webhook_deliveries.router,
        decision_hooks.router,
        inbound_messages.router,
        mlflow_hooks.router,
        reconciler.router,
        web_router,
    ):
        app.include_router(router)
    document_errors(app)
    return app
