"""The audit trail of a model version: `GET /api/2.0/signoff/activities/list`."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from api.deps import PrincipalDep, ServicesDep
from api.errors import error_responses
from api.models.activities import Activity, ActivityList
from api.models.common import ModelName, Version
from api.services.mlflow import existing_version
from api.services.permissions import require_permission
from policies import PermissionLevel

router = APIRouter(
    prefix="/api/2.0/signoff/activities",
    tags=["activities"],
    responses=error_responses(400, 401, 403, 404, 502, 503),
)


@router.get("/list")
async def list_activities(
    name: Annotated[ModelName, Query()],
    version: Annotated[Version, Query()],
    principal: PrincipalDep,
    services: ServicesDep,
) -> ActivityList:
    """The audit trail of one model version, oldest first. MLflow is asked only when the
    ledger has nothing on the version (to tell a missing version from a quiet one): a trail
    on the record is the answer, and it stays the record after the version is deleted."""
    require_permission(services, principal, name, PermissionLevel.CAN_READ)
    entries = await services.ledger.requests.audit_trail(name, version)
    if not entries:
        await existing_version(services, name, version)
    return ActivityList(activities=[Activity.of(entry) for entry in entries])
