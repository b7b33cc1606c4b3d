"""Databricks-compatible transition requests: `/api/2.0/mlflow/transition-requests/*`."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Query

from signoff.api.deps import PrincipalDep, ServicesDep, TransitionsDep, require_permission
from signoff.api.errors import ApiError, bad_request, forbidden, not_found
from signoff.api.mlflow_lookup import existing_version
from signoff.api.schemas import (
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
from signoff.policies import PermissionLevel, Principal, is_alias, rule_for
from signoff.workflows.client import DecisionRefused, NoOpenRequest, RequestAlreadyOpen
from signoff.workflows.types import Decision, LedgerUpdate, TransitionInput

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
    rule = rule_for(services.policy, body.name, body.stage)
    if rule is None:
        raise bad_request(
            f"no policy rule covers moving {body.name!r} to {body.stage}; "
            "ask a platform admin to add one to the policy file"
        )
    version = await existing_version(services, body.name, body.version)
    if is_alias(body.stage):
        if body.stage.removeprefix("@") in version.aliases:
            raise bad_request(f"version {body.version} of {body.name!r} is already {body.stage}")
    elif version.current_stage == body.stage:
        raise bad_request(f"version {body.version} of {body.name!r} is already in {body.stage}")
    inp = TransitionInput(
        request_id=uuid.uuid4().hex,
        model=body.name,
        version=body.version,
        target=body.stage,
        from_stage=version.current_stage,
        requester=principal,
        comment=body.comment,
        policy=services.policy,
        rule=rule,
        policy_hash=services.policy_hash,
        created_ms=int(time.time() * 1000),
    )
    try:
        request = await transitions.start(inp)
    except RequestAlreadyOpen as err:
        raise ApiError(
            409,
            f"an open request to move version {body.version} of {body.name!r} to {body.stage} "
            f"already exists (by {err.open_request.requester}); approve, reject or cancel it",
            request=transition_request_json(err.open_request, services.policy, principal),
        ) from err
    # Written here too so the request is listed at once; the workflow's writes supersede it.
    await asyncio.to_thread(services.ledger.record, LedgerUpdate(snapshot=request))
    return {"request": transition_request_json(request, services.policy, principal)}


async def _decide(
    action: str,
    target: RejectTransitionRequest,
    principal: Principal,
    services: ServicesDep,
    transitions: TransitionsDep,
) -> dict[str, Any]:
    name, version, stage, comment = target.name, target.version, target.stage, target.comment
    require_permission(services, principal, name, PermissionLevel.CAN_READ)
    try:
        entry = await transitions.decide(
            action, name, version, stage, Decision(principal=principal, comment=comment)
        )
    except NoOpenRequest as err:
        raise not_found(
            f"there is no open request to move version {version} of {name!r} to {stage}"
        ) from err
    except DecisionRefused as err:
        if err.not_open:
            raise bad_request(err.reason) from err
        raise forbidden(err.reason) from err
    if action != "approve":
        # A reject or cancel closes the request at once, and the workflow copies that to the
        # ledger in the background. Record it now too (as create does; ledger writes are
        # revision-guarded and keyed, so idempotent), so a client that lists right after, as
        # Databricks clients do, does not see the request it just closed as open. (Approve is
        # left alone: the update already waits for the apply, and it is the latency path.)
        try:
            snapshot = await transitions.snapshot(name, version, stage)
            await asyncio.to_thread(
                services.ledger.record, LedgerUpdate(snapshot=snapshot, activities=[entry])
            )
        except Exception:  # the workflow's own write follows; never fail a decision made
            log.warning("could not record the %s of %s v%s early", action, name, version)
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
    requests = await asyncio.to_thread(
        services.ledger.list_requests, model=name, version=version, open_only=True
    )
    return {
        "requests": [
            open_request_activity_json(request, services.policy, principal) for request in requests
        ]
    }
