"""The FastAPI application factory."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from api.auth import TokenVerifier
from api.deps import Services
from api.errors import install_error_handlers
from api.routers import (
    break_glass,
    ci,
    comments,
    decision_hooks,
    health,
    mlflow_hooks,
    reconciler,
    registry_webhooks,
    signoff,
    transition_requests,
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
    app.include_router(health.router)
    app.include_router(transition_requests.router)
    app.include_router(break_glass.router)
    app.include_router(signoff.router)
    app.include_router(ci.router)
    app.include_router(comments.router)
    app.include_router(registry_webhooks.router)
    app.include_router(decision_hooks.router)
    app.include_router(mlflow_hooks.router)
    app.include_router(reconciler.router)
    app.include_router(web_router)
    return app
