"""Break-glass: Databricks' direct stage transition,
`POST /api/2.0/mlflow/databricks/model-versions/transition-stage`.

Signoff applies it at once, without checks or approvals, but only for a principal holding
CAN_MANAGE on the model, only where the policy rule for the target says `break_glass: true`,
and only with a comment saying why. It is recorded as an `APPLIED_TRANSITION` activity whose
`system_comment` starts with "Break-glass" (and whose id starts with `breakglass-`), and
announced to the registry webhooks like any other transition.

Order of the answers: 400 for a malformed body (an alias is one: this endpoint moves stages),
403 without CAN_MANAGE, 403 where the rule does not allow break-glass, 400 without a comment,
404 for an unknown model or version, 400 if the version is already in the stage, 400 with
MLflow's message if MLflow refuses, 503 if MLflow or Temporal cannot be reached. Nothing in
MLflow changes before every refusal has had its chance.
"""

from __future__ import annotations

import logging
import uuid
from typing import Annotated, Any

from fastapi import APIRouter
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from api.deps import PrincipalDep, Services, ServicesDep, require_permission
from api.errors import ApiError, bad_request, forbidden, not_found
from api.mlflow_lookup import existing_version
from api.schemas import Comment, ModelName, Version, open_request_activity_json
from policies import PermissionLevel, Principal, is_alias, normalize_target, rule_for
from workflows.domain import AuditEntry, AuditType, RequestSnapshot, now_ms
from workflows.mlflow_client import (
    InvalidRequest,
    MlflowError,
    MlflowUnavailable,
    ModelVersion,
    ResourceNotFound,
)
from workflows.moves import AlreadyMoved, MoveInProgress, move_version
from workflows.webhooks.events import transition_events

router = APIRouter(prefix="/api/2.0/mlflow/databricks/model-versions", tags=["break-glass"])
log = logging.getLogger(__name__)

BREAK_GLASS_PREFIX = "breakglass-"


def _stage(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError("stage must be a string: None, Staging, Production or Archived")
    target = normalize_target(value)
    if is_alias(target):
        raise ValueError(
            f"{target!r} is an alias; transition-stage moves stages only (None, Staging, "
            "Production, Archived). Move an alias through transition-requests/create"
        )
    return target


Stage = Annotated[str, BeforeValidator(_stage)]


class TransitionModelVersionStageDatabricks(BaseModel):
    """Databricks' request body, field for field."""

    model_config = ConfigDict(extra="ignore")

    name: ModelName
    version: Version
    stage: Stage
    archive_existing_versions: bool = Field(
        False,
        description="Archive the versions now in the target stage (Staging or Production).",
    )
    comment: Comment = None


@router.post("/transition-stage")
async def transition_stage(
    body: TransitionModelVersionStageDatabricks,
    principal: PrincipalDep,
    services: ServicesDep,
) -> dict[str, Any]:
    name, version, stage = body.name, body.version, body.stage
    granted = require_permission(services, principal, name, PermissionLevel.CAN_MANAGE)
    rule = rule_for(services.policy, name, stage)
    if rule is None:
        raise forbidden(
            f"break-glass refused: no rule of the policy (policy {services.policy_hash[:12]}) "
            f"covers moving {name!r} to {stage}, so nothing allows a direct transition"
        )
    if not rule.break_glass:
        raise forbidden(
            f"break-glass refused: the policy rule for {name!r} to {rule.to} "
            f"(models {', '.join(rule.models)}; policy {services.policy_hash[:12]}) does not "
            "set `break_glass: true`; request the transition through transition-requests/create"
        )
    comment = body.comment
    if comment is None or not comment.strip():
        raise bad_request(
            "a break-glass transition needs a comment saying why it cannot wait for the "
            "governed path; send a non-empty `comment`"
        )

    current = await existing_version(services, name, version)
    if current.current_stage == stage:
        raise bad_request(f"version {version} of {name!r} is already in {stage}")
    # Connect to Temporal before MLflow changes: if it is down, answer 503 with nothing done,
    # rather than apply a transition that could not be announced.
    await services.transitions()
    open_requests = await services.ledger.requests.search(
        model=name, version=version, open_only=True
    )

    breakglass_id = f"{BREAK_GLASS_PREFIX}{uuid.uuid4().hex}"
    moved = await _apply(services, current, stage, body.archive_existing_versions, breakglass_id)

    entry = AuditEntry(
        id=breakglass_id,
        request_id="",
        seq=0,
        model=name,
        version=version,
        activity_type=AuditType.APPLIED_TRANSITION,
        user_id=principal.sub,
        from_stage=current.current_stage,
        to_stage=stage,
        comment=comment,
        system_comment=_system_comment(
            services, principal, current.current_stage, stage, body, open_requests
        ),
        creation_timestamp=now_ms(),
    )
    await services.ledger.requests.append_entries(entries=[entry])
    log.warning(
        "break-glass: %s moved version %s of %r from %s to %s (activity %s)",
        principal.sub,
        version,
        name,
        current.current_stage,
        stage,
        breakglass_id,
    )

    events = transition_events(
        breakglass_id,
        model=name,
        version=version,
        to_stage=stage,
        from_stage=current.current_stage,
        comment=comment,
        event_timestamp=entry.creation_timestamp,
        text=(
            f"Break-glass transition by {principal.sub}: version {version} of {name} moved "
            f"from {current.current_stage} to {stage} directly, without checks or approvals."
        ),
    )
    await services.announce(events)

    return {
        "model_version_databricks": _model_version_databricks(
            moved, granted, open_requests, services, principal
        )
    }


async def _apply(
    services: Services,
    current: ModelVersion,
    stage: str,
    archive_existing_versions: bool,
    breakglass_id: str,
) -> ModelVersion:
    """Move the version in MLflow between the registry marks that tell the out-of-band
    detector Signoff made this change (see `RegistryActivities.apply_transition`)."""
    name, version = current.name, current.version
    try:
        moved = await move_version(
            services.registry,
            services.ledger,
            model=name,
            version=version,
            current_stage=current.current_stage,
            target=stage,
            archive_existing_versions=archive_existing_versions,
            change_id=breakglass_id,
            exclusive=True,
        )
    except MoveInProgress as err:
        raise ApiError(
            409,
            f"another transition of version {version} of {name!r} is being applied right now; "
            "check the version and try again if it is still needed",
        ) from err
    except AlreadyMoved as err:
        raise bad_request(
            f"version {version} of {name!r} moved to {err.current_stage} meanwhile; nothing was "
            "changed"
        ) from err
    except MlflowError as err:
        # No break-glass activity is recorded: if MLflow did move the version after all (a
        # lost answer), the detector is right to report a change Signoff did not record.
        if isinstance(err, ResourceNotFound):
            raise not_found(
                f"version {version} of model {name!r} does not exist in MLflow"
            ) from err
        if isinstance(err, InvalidRequest):
            raise bad_request(f"MLflow refused the transition: {err.message}") from err
        if isinstance(err, MlflowUnavailable):
            raise ApiError(503, f"MLflow is not reachable: {err.message}") from err
        raise ApiError(502, f"MLflow answered with an error: {err.message}") from err
    assert moved is not None  # a stage transition always answers with the version
    return moved


def _system_comment(
    services: Services,
    principal: Principal,
    from_stage: str,
    stage: str,
    body: TransitionModelVersionStageDatabricks,
    open_requests: list[RequestSnapshot],
) -> str:
    parts = [
        f"Break-glass transition by {principal.sub} (CAN_MANAGE) from {from_stage} to {stage}, "
        f"applied directly without checks or approvals; the policy rule for {stage} allows "
        f"break_glass (policy {services.policy_hash[:12]})"
    ]
    if body.archive_existing_versions and stage in ("Staging", "Production"):
        parts.append(f"other versions in {stage} archived")
    same_target = [request for request in open_requests if request.target == stage]
    if same_target:
        listed = ", ".join(f"{r.id} by {r.requester} ({r.state.value})" for r in same_target)
        parts.append(f"the open request for the same target stays open: {listed}")
    return "; ".join(parts)


def _model_version_databricks(
    version: ModelVersion,
    granted: PermissionLevel,
    open_requests: list[RequestSnapshot],
    services: Services,
    principal: Principal,
) -> dict[str, Any]:
    """Databricks' ModelVersionDatabricks from what MLflow answered (fields MLflow's answer
    does not carry through `ModelVersion` are omitted, as Databricks omits unset fields)."""
    body: dict[str, Any] = {
        "name": version.name,
        "version": version.version,
        "current_stage": version.current_stage,
        "last_updated_timestamp": version.last_updated_timestamp,
        "run_id": version.run_id,
        "source": version.source,
        "status": version.status,
        "tags": [{"key": key, "value": value} for key, value in version.tags.items()],
        "permission_level": granted.value,
        "open_requests": [
            open_request_activity_json(request, services.policy, principal)
            for request in open_requests
        ],
    }
    return {key: value for key, value in body.items() if value is not None}
