"""Break-glass: Databricks' direct stage transition,
`POST /api/2.0/mlflow/databricks/model-versions/transition-stage`, over
`api.services.break_glass` (which says who may, where, and in which order it refuses).

Answers: 400 for a malformed body (an alias is one: this endpoint moves stages), 403 without
CAN_MANAGE or where the rule does not allow break-glass, 400 without a comment, 404 for an
unknown model or version, 400 if the version is already in the stage or MLflow refuses, 409 if
another transition of the version is being applied, 503 if MLflow or Temporal cannot be
reached.
"""

from __future__ import annotations

from fastapi import APIRouter

from api.deps import PrincipalDep, ServicesDep
from api.errors import error_responses
from api.models.break_glass import (
    ModelVersionDatabricks,
    TransitionModelVersionStageDatabricks,
    TransitionStageResponse,
)
from api.services.break_glass import break_glass

router = APIRouter(
    prefix="/api/2.0/mlflow/databricks/model-versions",
    tags=["break-glass"],
    responses=error_responses(400, 401, 403, 404, 409, 502, 503),
)


@router.post("/transition-stage")
async def transition_stage(
    body: TransitionModelVersionStageDatabricks,
    principal: PrincipalDep,
    services: ServicesDep,
) -> TransitionStageResponse:
    """Move the version now, without checks or approvals, where the policy allows it."""
    move = await break_glass(
        services,
        principal=principal,
        name=body.name,
        version=body.version,
        stage=body.stage,
        archive_existing_versions=body.archive_existing_versions,
        comment=body.comment,
    )
    return TransitionStageResponse(
        model_version_databricks=ModelVersionDatabricks.of(
            move.moved,
            granted=move.granted,
            open_requests=move.open_requests,
            policy=services.policy,
            viewer=principal,
        )
    )
