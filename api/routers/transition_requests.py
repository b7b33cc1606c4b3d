"""Databricks-compatible transition requests: `/api/2.0/mlflow/transition-requests/*`."""

from __future__ import annotations

import logging
from typing import Annotated, Any

from fastapi import APIRouter, Query

from api.actions import decide, open_request
from api.deps import PrincipalDep, ServicesDep, TransitionsDep, require_permission
from api.errors import not_found
from api.mlflow_lookup import existing_version
from api.schemas import (
    MAX_COMMENT,
    ApproveTransitionRequest,
    CreateTransitionRequest,
    ModelName,
    RejectTransitionRequest,
    Target,
    Version,
    activity_json,
    open_request_activity_json,
    transition_request_json,
)
from policies import PermissionLevel, Principal
from workflows.client import NoOpenRequest
from workflows.messages import Decision

router = APIRouter(prefix="/api/2.0/mlflow/transition-requests", tags=["transition requests"])
log = logging.getLogger(__name__)


@router.post("/create")
async def create_transition_request(
    body: CreateTransitionRequest,
    principal: PrincipalDep,
    services: ServicesDep,
    transitions: TransitionsDep,
) -> dict[str, Any]:
    require_permission(services, principal, body.name, PermissionLevel.CAN_READ)
    request = await open_request(
        services, transitions, principal, body.name, body.version, body.stage, body.comment
    )
    return {"request": transition_request_json(request, services.policy, principal)}


async def _decide(
    action: str,
    target: RejectTransitionRequest,
    principal: Principal,
    services: ServicesDep,
    transitions: TransitionsDep,
) -> dict[str, Any]:
    require_permission(services, principal, target.name, PermissionLevel.CAN_READ)
    entry = await decide(
        services,
        transitions,
        action,
        target.name,
        target.version,
        target.stage,
        Decision(principal=principal, comment=target.comment),
    )
    return {"activity": activity_json(entry)}


@router.post("/approve")
async def approve_transition_request(
    body: ApproveTransitionRequest,
    principal: PrincipalDep,
    services: ServicesDep,
    transitions: TransitionsDep,
) -> dict[str, Any]:
    return await _decide("approve", body, principal, services, transitions)


@router.post("/reject")
async def reject_transition_request(
    body: RejectTransitionRequest,
    principal: PrincipalDep,
    services: ServicesDep,
    transitions: TransitionsDep,
) -> dict[str, Any]:
    return await _decide("reject", body, principal, services, transitions)


@router.delete("/delete")
async def delete_transition_request(
    name: Annotated[ModelName, Query()],
    version: Annotated[Version, Query()],
    stage: Annotated[Target, Query()],
    creator: Annotated[str, Query(min_length=1, max_length=256)],
    principal: PrincipalDep,
    services: ServicesDep,
    transitions: TransitionsDep,
    comment: Annotated[str | None, Query(max_length=MAX_COMMENT)] = None,
) -> dict[str, Any]:
    require_permission(services, principal, name, PermissionLevel.CAN_READ)
    try:
        open_request = await transitions.snapshot(name, version, stage)
    except NoOpenRequest:
        open_request = None
    if (
        open_request is None
        or not open_request.state.is_open
        or (open_request.requester != creator)
    ):
        raise not_found(
            f"there is no open request by {creator!r} to move version {version} of {name!r} "
            f"to {stage}"
        )
    target = RejectTransitionRequest(name=name, version=version, stage=stage, comment=comment)
    return await _decide("cancel", target, principal, services, transitions)


@router.get("/list")
async def list_transition_requests(
    name: Annotated[ModelName, Query()],
    version: Annotated[Version, Query()],
    principal: PrincipalDep,
    services: ServicesDep,
) -> dict[str, Any]:
    require_permission(services, principal, name, PermissionLevel.CAN_READ)
    await existing_version(services, name, version)
    requests = await services.ledger.requests.search(model=name, version=version, open_only=True)
    return {
        "requests": [
            open_request_activity_json(request, services.policy, principal) for request in requests
        ]
    }
