"""What the Databricks API has no room for: `/api/2.0/signoff/*`."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Annotated, Any

from fastapi import APIRouter, Query
from temporalio.client import WorkflowFailureError

from api.deps import (
    PrincipalDep,
    Services,
    ServicesDep,
    TransitionsDep,
    has_binding,
    require_permission,
)
from api.errors import not_found
from api.mlflow_lookup import existing_version
from api.schemas import ModelName, Version, activity_json, transition_request_json
from policies import PermissionLevel, Principal, permission_for
from workflows.client import Transitions
from workflows.domain import RequestSnapshot, RequestState

router = APIRouter(prefix="/api/2.0/signoff", tags=["signoff"])

RequestId = Annotated[str, Query(min_length=1, max_length=64, pattern=r"^[0-9a-f]+$")]


@router.get("/activities/list")
async def list_activities(
    name: Annotated[ModelName, Query()],
    version: Annotated[Version, Query()],
    principal: PrincipalDep,
    services: ServicesDep,
) -> dict[str, Any]:
    """The audit trail of one model version, oldest first."""
    require_permission(services, principal, name, PermissionLevel.CAN_READ)
    await existing_version(services, name, version)
    entries = await asyncio.to_thread(services.ledger.list_activities, name, version)
    return {"activities": [activity_json(entry) for entry in entries]}


async def _readable_request(
    request_id: str, principal: Principal, services: Services
) -> RequestSnapshot:
    request = await asyncio.to_thread(services.ledger.get_request, request_id)
    if request is None or not has_binding(services, principal, request.model):
        raise not_found(f"no transition request with id {request_id!r}")
    require_permission(services, principal, request.model, PermissionLevel.CAN_READ)
    return request


async def _freshest(request: RequestSnapshot, transitions: Transitions) -> RequestSnapshot:
    """While a request is open the workflow knows more than the ledger; ask it."""
    if not request.state.is_open:
        return request
    with contextlib.suppress(Exception):  # the ledger's view is a fine answer
        return await transitions.live_snapshot(request)
    return request


@router.get("/transition-requests/get")
async def get_transition_request(
    id: RequestId,
    principal: PrincipalDep,
    services: ServicesDep,
    transitions: TransitionsDep,
) -> dict[str, Any]:
    request = await _freshest(await _readable_request(id, principal, services), transitions)
    return {"request": transition_request_json(request, services.policy, principal)}


@router.get("/transition-requests/wait")
async def wait_for_transition_request(
    id: RequestId,
    principal: PrincipalDep,
    services: ServicesDep,
    transitions: TransitionsDep,
    timeout_s: Annotated[float, Query(gt=0, le=300)] = 30.0,
) -> dict[str, Any]:
    """Long-poll: answer when the request is decided, or with its state after `timeout_s`."""
    request = await _readable_request(id, principal, services)
    if request.state.is_open:
        try:
            request = await asyncio.wait_for(
                transitions.wait_closed(request.workflow_id, request.run_id), timeout_s
            )
        except TimeoutError:
            request = await _freshest(request, transitions)
        except WorkflowFailureError as err:
            # The workflow ended without a result (terminated or failed outside Signoff): the
            # request is over, and saying PENDING would keep a long-polling client waiting.
            cause = err.cause or err
            request = request.model_copy(
                update={
                    "state": RequestState.FAILED,
                    "reason": f"the request's workflow ended without a decision "
                    f"({type(cause).__name__}: {cause})",
                }
            )
    return {"request": transition_request_json(request, services.policy, principal)}


@router.get("/transition-requests/search")
async def search_transition_requests(
    principal: PrincipalDep,
    services: ServicesDep,
    name: Annotated[ModelName | None, Query()] = None,
    open_only: bool = True,
    max_results: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> dict[str, Any]:
    """Requests across versions (newest first), limited to models the caller may read."""
    if name is not None:
        require_permission(services, principal, name, PermissionLevel.CAN_READ)
    requests = await asyncio.to_thread(
        services.ledger.list_requests, model=name, open_only=open_only, limit=max_results
    )
    readable = [
        request
        for request in requests
        if permission_for(services.policy, principal.roles, request.model) is not None
    ]
    return {
        "requests": [
            transition_request_json(request, services.policy, principal) for request in readable
        ]
    }
