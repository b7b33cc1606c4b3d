"""Liveness and readiness for load balancers and `signoff dev`."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from api.deps import ServicesDep
from api.models.health import Liveness, Readiness

router = APIRouter(tags=["health"])


@router.get("/healthz")
async def healthz() -> Liveness:
    return Liveness()


@router.get(
    "/readyz",
    response_model=Readiness,
    responses={503: {"model": Readiness, "description": "Something does not answer (named)."}},
)
async def readyz(services: ServicesDep) -> JSONResponse:
    """Ready when the ledger, Temporal and MLflow all answer; each is reported by name. Not
    ready while the process drains (after SIGTERM), so load balancers take it out."""
    if services.draining.is_set():
        answer = Readiness(status="not ready", checks={"api": "draining: shutting down"})
        return JSONResponse(status_code=503, content=answer.model_dump())

    async def database() -> None:
        await services.ledger.ping()

    async def temporal() -> None:
        transitions = await services.transitions()
        await transitions.client.service_client.check_health()

    async def mlflow() -> None:
        await services.registry.ping()

    checks = {"database": database, "temporal": temporal, "mlflow": mlflow}
    results: dict[str, str] = {}
    for name, probe in checks.items():
        try:
            await asyncio.wait_for(probe(), timeout=5)
            results[name] = "ok"
        except Exception as err:  # report, never raise: this is a probe
            results[name] = f"unavailable: {getattr(err, 'message', None) or err}"
    ready = all(value == "ok" for value in results.values())
    answer = Readiness(status="ready" if ready else "not ready", checks=results)
    return JSONResponse(status_code=200 if ready else 503, content=answer.model_dump())
