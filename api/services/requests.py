"""Transition requests: open one, read one (fresh while it is open), wait for one to be
decided, and list them. Every way in (the API's routes, an inbound decision webhook, MLflow's
events) opens requests through `open_request`, so each meets the same rules and errors."""

from __future__ import annotations

import asyncio
import contextlib
import uuid

from api.deps import Services
from api.models.transition_requests import TransitionRequest
from api.services.errors import Conflict, Invalid, NotFound
from api.services.mlflow import existing_version, policy_tags
from api.services.permissions import has_binding, require_permission
from policies import (
    PermissionLevel,
    Principal,
    condition_keys,
    is_alias,
    permission_for,
    rule_for,
)
from workflows.client import NoOpenRequest, RequestAlreadyOpen, Transitions
from workflows.domain import RequestSnapshot, RequestState, RollbackMark, now_ms
from workflows.messages import TransitionInput, VersionSource


async def open_request(
    services: Services,
    transitions: Transitions,
    *,
    principal: Principal,
    name: str,
    version: str,
    stage: str,
    comment: str | None,
    rollback: RollbackMark | None = None,
) -> RequestSnapshot:
    """Start the governed transition of a version under the rule the policy has for it (for a
    `rollback`, the rule's rollback rule), chosen by the version's tags as they are now."""
    if rule_for(services.policy, name, stage) is None and not condition_keys(services.policy):
        raise Invalid(
            f"no policy rule covers moving {name!r} to {stage}; "
            "ask a platform admin to add one to the policy file"
        )
    current = await existing_version(services, name, version)
    tags = await policy_tags(services, current)
    rule = rule_for(services.policy, name, stage, tags)
    if rule is None:
        shown = ", ".join(f"{k}={v}" for k, v in sorted(tags.items())) or "none"
        raise Invalid(
            f"no policy rule covers moving {name!r} to {stage} for a version with these tags "
            f"(the ones the policy's tiers read: {shown}); ask a platform admin to add one"
        )
    if rollback is not None:
        rule = rule.for_rollback()
    if is_alias(stage):
        if stage.removeprefix("@") in current.aliases:
            raise Invalid(f"version {version} of {name!r} is already {stage}")
    elif current.current_stage == stage:
        raise Invalid(f"version {version} of {name!r} is already in {stage}")
    inp = TransitionInput(
        request_id=uuid.uuid4().hex,
        model=name,
        version=version,
        target=stage,
        from_stage=current.current_stage,
        requester=principal,
        comment=comment,
        policy=services.policy,
        rule=rule,
        policy_hash=services.policy_hash,
        created_ms=now_ms(),
        tags=tags,
        rollback=rollback,
        opened=VersionSource(
            source=current.source, run_id=current.run_id, model_id=current.model_id
        ),
    )
    try:
        request = await transitions.start(inp)
    except RequestAlreadyOpen as err:
        already = TransitionRequest.of(err.open_request, policy=services.policy, viewer=principal)
        raise Conflict(
            f"an open request to move version {version} of {name!r} to {stage} "
            f"already exists (by {err.open_request.requester}); approve, reject or cancel it",
            details={"request": already.model_dump(mode="json")},
        ) from err
    # Written here too so the request is listed at once; the workflow's writes supersede it.
    await services.ledger.requests.record(snapshot=request)
    return request


async def open_request_by(
    transitions: Transitions, *, name: str, version: str, stage: str, creator: str
) -> RequestSnapshot:
    """The open request for that target, if `creator` opened it; NotFound otherwise."""
    try:
        request = await transitions.snapshot(name, version, stage)
    except NoOpenRequest:
        request = None
    if request is None or not request.state.is_open or request.requester != creator:
        raise NotFound(
            f"there is no open request by {creator!r} to move version {version} of {name!r} "
            f"to {stage}"
        )
    return request


async def readable_request(
    services: Services, *, request_id: str, principal: Principal
) -> RequestSnapshot:
    """The request as the ledger has it, if the principal may read its model."""
    request = await services.ledger.requests.get(request_id)
    if request is None or not has_binding(services, principal, request.model):
        raise NotFound(f"no transition request with id {request_id!r}")  # the same either way
    require_permission(services, principal, request.model, PermissionLevel.CAN_READ)
    return request


async def freshest(request: RequestSnapshot, transitions: Transitions) -> RequestSnapshot:
    """While a request is open the workflow knows more than the ledger; ask it."""
    if not request.state.is_open:
        return request
    with contextlib.suppress(Exception):  # the ledger's view is a fine answer
        return await transitions.live_snapshot(request)
    return request


SCHEDULED_POLL_S = 1.0
"""How often a wait on a PENDING request reads the ledger to learn that it became SCHEDULED."""


async def wait_decided(
    services: Services,
    request: RequestSnapshot,
    transitions: Transitions,
    *,
    timeout_s: float,
    seen_state: RequestState | None = None,
) -> RequestSnapshot:
    """The request once it is decided: closed, or, if it was PENDING, approved and SCHEDULED
    for its change window (a wait on a SCHEDULED request lasts until it closes); else as it
    stands after `timeout_s` or when the process begins to shut down, whichever comes first.
    "Was" is `seen_state`, the state the caller last saw, when it gives one: an approval that
    landed between the caller's look and this read is not waited past."""
    if not request.state.is_open:
        return request
    if seen_state is RequestState.PENDING and request.state is RequestState.SCHEDULED:
        return request
    # A run that ended without a decision comes back FAILED, so nobody waits on it.
    closed = asyncio.ensure_future(transitions.wait_closed(request))
    stopping = asyncio.ensure_future(services.draining.wait())
    scheduled = asyncio.ensure_future(_scheduled(services, request))
    waits = {closed, stopping, scheduled}
    try:
        done, _ = await asyncio.wait(waits, timeout=timeout_s, return_when="FIRST_COMPLETED")
    finally:
        for task in waits:
            if not task.done():
                task.cancel()
    if closed in done and not closed.cancelled():
        return closed.result()
    if scheduled in done and scheduled.exception() is None:
        request = scheduled.result()
    return await freshest(request, transitions)


async def _scheduled(services: Services, request: RequestSnapshot) -> RequestSnapshot:
    """The request once the ledger has it SCHEDULED, if it was PENDING (a close is
    `wait_closed`'s to see); never, for a request SCHEDULED or APPLYING already."""
    if request.state is not RequestState.PENDING:
        await asyncio.Event().wait()
    while True:
        found = await services.ledger.requests.get(request.id)
        if found is not None and found.state is RequestState.SCHEDULED:
            return found
        await asyncio.sleep(SCHEDULED_POLL_S)


async def open_requests_of(services: Services, *, name: str, version: str) -> list[RequestSnapshot]:
    """The version's open requests. MLflow is asked only when there are none (a version
    with an open request existed when it was opened; its apply re-reads it anyway), so a
    read of a governed version costs no MLflow call."""
    found = await services.ledger.requests.search(model=name, version=version, open_only=True)
    if not found:
        await existing_version(services, name, version)
    return found


async def search(
    services: Services,
    *,
    principal: Principal,
    name: str | None,
    open_only: bool,
    max_results: int,
) -> list[RequestSnapshot]:
    """Requests across versions (newest first), limited to models the principal may read."""
    if name is not None:
        require_permission(services, principal, name, PermissionLevel.CAN_READ)
    requests = await services.ledger.requests.search(
        model=name, open_only=open_only, limit=max_results
    )
    return [
        request
        for request in requests
        if permission_for(services.policy, principal.roles, request.model) is not None
    ]
