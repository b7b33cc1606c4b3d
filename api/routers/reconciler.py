"""The reconciler from the outside: `POST /api/2.0/signoff/reconciler/run` starts a pass now
(say, right after an incident), `GET /api/2.0/signoff/reconciler/runs` lists the latest passes.
Registry admins only: a pass reads every model."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from temporalio.service import RPCError

from api.deps import PrincipalDep, ServicesDep, require_registry_admin
from api.errors import ApiError
from workflows.reconcile.workflow import run_reconciler_now

router = APIRouter(prefix="/api/2.0/signoff/reconciler", tags=["reconciler"])


@router.post("/run")
async def run_now(principal: PrincipalDep, services: ServicesDep) -> dict[str, Any]:
    require_registry_admin(services, principal, "start the reconciler")
    transitions = await services.transitions()
    try:
        await run_reconciler_now(transitions.client, services.settings)
    except RPCError as err:
        raise ApiError(
            503,
            f"could not start the reconciler ({err.message}); is a worker running? it creates "
            "the schedule when it starts",
        ) from err
    return {"started": True}


@router.get("/runs")
async def list_runs(
    principal: PrincipalDep,
    services: ServicesDep,
    max_results: Annotated[int, Query(ge=1, le=1000)] = 20,
) -> dict[str, Any]:
    require_registry_admin(services, principal, "list reconciler passes")
    rows = await services.ledger.runs.latest(max_results)
    return {
        "runs": [
            {
                "id": row.id,
                "start_timestamp": row.started_ms,
                "end_timestamp": row.finished_ms,
                "versions": row.versions,
                "changes": row.changes,
                "baseline": row.baseline,
            }
            for row in rows
        ]
    }
