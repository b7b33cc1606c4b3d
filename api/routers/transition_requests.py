"""Databricks-compatible transition requests: `/api/2.0/mlflow/transition-requests/*`."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from api.deps import PrincipalDep, ServicesDep, TransitionsDep
from api.errors import ERROR_RESPONSES, error_responses
from api.models.activities import DecisionResponse
from api.models.common import MAX_NAME, ModelName, Target, Version
from api.models.transition_requests import (
    ApproveTransitionRequest,
    CreateTransitionRequest,
    OpenRequestActivity,
    OpenRequestList,
    RejectTransitionRequest,
    TransitionRequest,
    TransitionRequestConflict,
    TransitionRequestResponse,
)
from api.services.decisions import Action, decide
from api.services.permissions import require_permission
from api.services.requests import open_request, open_request_by, open_requests_of
from policies import PermissionLevel, Principal
from workflows.client import Transitions
from workflows.messages import Decision

MAX_QUERY_COMMENT = 500
"""A comment sent in the query (a cancel): with the name and creator at their longest, even
percent-encoded 4-byte characters keep the request head under `api.app.MAX_REQUEST_HEAD_BYTES`
(otherwise a valid request would meet 431)."""

router = APIRouter(
    prefix="/api/2.0/mlflow/transition-requests",
    tags=["transition requests"],
    responses=error_responses(400, 401, 403, 404, 503),
)


@router.post(
    "/create",
    responses={
        502: ERROR_RESPONSES[502],
        409: {
            "model": TransitionRequestConflict,
            "description": "RESOURCE_ALREADY_EXISTS: an open request for the same target "
            "exists (`request`); approve, reject or cancel it first",
        },
    },
)
async def create_transition_request(
    body: CreateTransitionRequest,
    principal: PrincipalDep,
    services: ServicesDep,
    transitions: TransitionsDep,
) -> TransitionRequestResponse:
    require_permission(services, principal, body.name, PermissionLevel.CAN_READ)
    request = await open_request(
        services,
        transitions,
        principal=principal,
        name=body.name,
        version=body.version,
        stage=body.stage,
        comment=body.comment,
    )
    return TransitionRequestResponse(
        request=TransitionRequest.of(request, policy=services.policy, viewer=principal)
    )


async def _decide(
    action: Action,
    target: RejectTransitionRequest,
    principal: Principal,
    services: ServicesDep,
    transitions: Transitions,
) -> DecisionResponse:
    require_permission(services, principal, target.name, PermissionLevel.CAN_READ)
    result = await decide(
        services,
        transitions,
        action=action,
        name=target.name,
        version=target.version,
        stage=target.stage,
        decision=Decision(principal=principal, comment=target.comment),
    )
    return DecisionResponse.of(result)


@router.post("/approve")
async def approve_transition_request(
    body: ApproveTransitionRequest,
    principal: PrincipalDep,
    services: ServicesDep,
    transitions: TransitionsDep,
) -> DecisionResponse:
    return await _decide("approve", body, principal, services, transitions)


@router.post("/reject")
async def reject_transition_request(
    body: RejectTransitionRequest,
    principal: PrincipalDep,
    services: ServicesDep,
    transitions: TransitionsDep,
) -> DecisionResponse:
    return await _decide("reject", body, principal, services, transitions)


@router.delete("/delete")
async def delete_transition_request(
    name: Annotated[ModelName, Query()],
    version: Annotated[Version, Query()],
    stage: Annotated[Target, Query()],
    creator: Annotated[str, Query(min_length=1, max_length=MAX_NAME)],
    principal: PrincipalDep,
    services: ServicesDep,
    transitions: TransitionsDep,
    comment: Annotated[str | None, Query(max_length=MAX_QUERY_COMMENT)] = None,
) -> DecisionResponse:
    """Cancel the open request `creator` opened for that target."""
    require_permission(services, principal, name, PermissionLevel.CAN_READ)
    await open_request_by(transitions, name=name, version=version, stage=stage, creator=creator)
    target = RejectTransitionRequest(name=name, version=version, stage=stage, comment=comment)
    return await _decide("cancel", target, principal, services, transitions)


@router.get("/list", responses=error_responses(502))
async def list_transition_requests(
    name: Annotated[ModelName, Query()],
    version: Annotated[Version, Query()],
    principal: PrincipalDep,
    services: ServicesDep,
) -> OpenRequestList:
    """The version's open requests, as Databricks lists them (REQUESTED_TRANSITION)."""
    require_permission(services, principal, name, PermissionLevel.CAN_READ)
    requests = await open_requests_of(services, name=name, version=version)
    return OpenRequestList(
        requests=[
            OpenRequestActivity.of(request, policy=services.policy, viewer=principal)
            for request in requests
        ]
    )
