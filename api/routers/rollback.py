"""`POST /api/2.0/signoff/rollback`: open a governed rollback request (`api.services.rollback`)."""

from __future__ import annotations

from fastapi import APIRouter

from api.deps import PrincipalDep, ServicesDep, TransitionsDep
from api.errors import ERROR_RESPONSES, error_responses
from api.models.rollback import RollbackRequest
from api.models.transition_requests import (
    TransitionRequest,
    TransitionRequestConflict,
    TransitionRequestResponse,
)
from api.services.permissions import require_permission
from api.services.rollback import open_rollback
from policies import PermissionLevel

router = APIRouter(
    prefix="/api/2.0/signoff",
    tags=["transition requests"],
    responses=error_responses(400, 401, 403, 404, 503),
)


@router.post(
    "/rollback",
    responses={
        502: ERROR_RESPONSES[502],
        409: {
            "model": TransitionRequestConflict,
            "description": "RESOURCE_ALREADY_EXISTS: an open request for the same version and "
            "target exists (`request`)",
        },
    },
)
async def rollback(
    body: RollbackRequest,
    principal: PrincipalDep,
    services: ServicesDep,
    transitions: TransitionsDep,
) -> TransitionRequestResponse:
    """Request moving the target back to the version that held it before (or `version`),
    under the policy's rollback rule for the target."""
    require_permission(services, principal, body.name, PermissionLevel.CAN_READ)
    request = await open_rollback(
        services,
        transitions,
        principal=principal,
        name=body.name,
        target=body.target,
        version=body.version,
        comment=body.comment,
    )
    return TransitionRequestResponse(
        request=TransitionRequest.of(request, policy=services.policy, viewer=principal)
    )
