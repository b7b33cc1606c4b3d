"""What a request is asked to do, whoever asks: the API's routes, an inbound decision webhook
and MLflow's events all open and decide requests through these two functions, so every way in
meets exactly the same rules and answers with the same errors (as `ApiError`)."""

from __future__ import annotations

import logging
import uuid

from api.deps import Services
from api.errors import ApiError, bad_request, forbidden, not_found
from api.mlflow_lookup import existing_version
from api.schemas import transition_request_json
from policies import Principal, is_alias, rule_for
from workflows.client import (
    DecisionRefused,
    NoOpenRequest,
    RequestAlreadyOpen,
    Transitions,
)
from workflows.domain import AuditEntry, RequestSnapshot, now_ms
from workflows.messages import Decision, TransitionInput

log = logging.getLogger(__name__)


async def open_request(
    services: Services,
    transitions: Transitions,
    principal: Principal,
    name: str,
    version: str,
    stage: str,
    comment: str | None,
) -> RequestSnapshot:
    """Start the governed transition of a version under the rule the policy has for it."""
    rule = rule_for(services.policy, name, stage)
    if rule is None:
        raise bad_request(
            f"no policy rule covers moving {name!r} to {stage}; "
            "ask a platform admin to add one to the policy file"
        )
    current = await existing_version(services, name, version)
    if is_alias(stage):
        if stage.removeprefix("@") in current.aliases:
            raise bad_request(f"version {version} of {name!r} is already {stage}")
    elif current.current_stage == stage:
        raise bad_request(f"version {version} of {name!r} is already in {stage}")
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
    )
    try:
        request = await transitions.start(inp)
    except RequestAlreadyOpen as err:
        raise ApiError(
            409,
            f"an open request to move version {version} of {name!r} to {stage} "
            f"already exists (by {err.open_request.requester}); approve, reject or cancel it",
            request=transition_request_json(err.open_request, services.policy, principal),
        ) from err
    # Written here too so the request is listed at once; the workflow's writes supersede it.
    await services.ledger.requests.record(snapshot=request)
    return request


async def decide(
    services: Services,
    transitions: Transitions,
    action: str,
    name: str,
    version: str,
    stage: str,
    decision: Decision,
) -> AuditEntry:
    """`approve`, `reject` or `cancel` the open request for that target, as `decision.principal`
    (the workflow's validators apply the policy: quorum, no self-approval, levels)."""
    try:
        entry = await transitions.decide(action, name, version, stage, decision)
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
            await services.ledger.requests.record(snapshot=snapshot, entries=[entry])
        except Exception:  # the workflow's own write follows; never fail a decision made
            log.warning("could not record the %s of %s v%s early", action, name, version)
    return entry
