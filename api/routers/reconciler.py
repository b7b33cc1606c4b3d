"""The reconciler from the outside: `POST /api/2.0/signoff/reconciler/run` starts a pass now
(say, right after an incident), `GET /api/2.0/signoff/reconciler/runs` lists the latest passes.
Registry admins only: a pass reads every model."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from temporalio.service import RPCError

from api.deps import PrincipalDep, ServicesDep
from api.errors import error_responses
from api.models.reconciler import ReconcilerRun, ReconcilerRunList, ReconcilerStarted
from api.services.errors import Unavailable
from api.services.permissions import require_registry_admin
from workflows.client import temporal_call
from workflows.reconcile.workflow import run_reconciler_now

router = APIRouter(
    prefix="/api/2.0/signoff/reconciler",
    tags=["reconciler"],
    responses=error_responses(400, 401, 403),
)


@router.post("/run", responses=error_responses(503))
async def run_now(principal: PrincipalDep, services: ServicesDep) -> ReconcilerStarted:
    require_registry_admin(services, principal, "start the reconciler")
    transitions = await services.transitions()
    try:
        async with temporal_call("starting a reconciler pass"):
            await run_reconciler_now(transitions.client, services.settings)
    except RPCError as err:
        raise Unavailable(
            f"could not start the reconciler ({err.message}); is a worker running? it creates "
            "the schedule when it starts",
            which="worker",
        ) from err
    return ReconcilerStarted(started=True)


@router.get("/runs")
async def list_runs(
    principal: PrincipalDep,
    services: ServicesDep,
    max_results: Annotated[int, Query(ge=1, le=1000)] = 20,
) -> ReconcilerRunList:
    require_registry_admin(services, principal, "list reconciler passes")
    rows = await services.ledger.runs.latest(max_results)
    return ReconcilerRunList(runs=[ReconcilerRun.of(row) for row in rows])
