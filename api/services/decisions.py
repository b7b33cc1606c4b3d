"""Deciding a request: approve, reject or cancel, whoever asks (the API's routes, an inbound
decision webhook), on one path, so quorum, no self-approval and levels are the workflow's
rules for every way in."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime
from typing import Literal

from api.deps import Services
from api.services.errors import Invalid, NotFound, Refused
from workflows.client import DecisionRefused, NoOpenRequest, Transitions
from workflows.domain import RequestSnapshot, RequestState
from workflows.messages import Decision, DecisionResult

log = logging.getLogger(__name__)

Action = Literal["approve", "reject", "cancel"]


async def decide(
    services: Services,
    transitions: Transitions,
    *,
    action: Action,
    name: str,
    version: str,
    stage: str,
    decision: Decision,
) -> DecisionResult:
    """`approve`, `reject` or `cancel` the open request for that target, as `decision.principal`
    (the workflow's validators apply the policy: quorum, no self-approval, levels), and where
    the request stands after it. A completing approval whose transition is still being
    applied when its answer is due says why, if MLflow is the reason."""
    try:
        result = await _send(services, transitions, action, name, version, stage, decision)
    except NoOpenRequest as err:
        raise await _no_open_request(services, name=name, version=version, stage=stage) from err
    except DecisionRefused as err:
        if err.not_open:
            raise Invalid(err.reason) from err
        raise Refused(err.reason) from err
    if result.state is RequestState.APPLYING and result.reason is None:
        result = result.model_copy(update={"reason": await _why_still_applying(services)})
    await _record_early(services, transitions, action, result, name, version, stage)
    return result


async def _record_early(
    services: Services,
    transitions: Transitions,
    action: Action,
    result: DecisionResult,
    name: str,
    version: str,
    stage: str,
) -> None:
    """The workflow copies every decision to the ledger in the background. Record it now too
    (as create does; ledger writes are revision-guarded and keyed, so idempotent), so a client
    that lists right after, as Databricks clients do, sees its own decision: from the record
    the answer carries, or (a worker from before it) the workflow's snapshot for a reject or
    cancel."""
    try:
        if result.ledger is not None:
            update = result.ledger
            await services.ledger.requests.record(snapshot=update.snapshot, entries=update.entries)
        elif action != "approve":
            snapshot = await transitions.snapshot(name, version, stage)
            await services.ledger.requests.record(snapshot=snapshot, entries=[result.entry])
    except Exception:  # the workflow's own write follows; never fail a decision made
        log.warning("could not record the %s of %s v%s early", action, name, version, exc_info=True)


async def _send(
    services: Services,
    transitions: Transitions,
    action: Action,
    name: str,
    version: str,
    stage: str,
    decision: Decision,
) -> DecisionResult:
    """The decision, sent to the target's workflow. One that finds no workflow while the ledger
    has the request open (it opened while the decision was on its way, and a workflow started a
    moment ago answered "not found" to an update in the suite's runs) is sent again, a few times
    over a second; the update id is the decision's, so it never counts twice."""
    for _ in range(OPENING_RESENDS):
        try:
            return await transitions.decide(action, name, version, stage, decision)
        except NoOpenRequest:
            if not await _opened_meanwhile(services, name=name, version=version, stage=stage):
                raise
        await asyncio.sleep(OPENING_RESEND_S)
    return await transitions.decide(action, name, version, stage, decision)


OPENING_RESENDS = 5
OPENING_RESEND_S = 0.2


async def _opened_meanwhile(services: Services, *, name: str, version: str, stage: str) -> bool:
    latest = await _latest(services, name=name, version=version, stage=stage)
    return latest is not None and latest.state.is_open


async def _latest(
    services: Services, *, name: str, version: str, stage: str
) -> RequestSnapshot | None:
    """The ledger's latest request to move that version to `stage`, if any."""
    requests = await services.ledger.requests.search(model=name, version=version, limit=50)
    return next((r for r in requests if r.target.lower() == stage.lower()), None)


async def _no_open_request(
    services: Services, *, name: str, version: str, stage: str
) -> Invalid | NotFound:
    """No open request for that target: say how the last one ended, if there was one."""
    latest = await _latest(services, name=name, version=version, stage=stage)
    if latest is None:
        return NotFound(
            f"there is no open request to move version {version} of {name!r} to {stage}"
        )
    return Invalid(f"the request {latest.id} is no longer open: {_how_it_ended(latest)}")


def _how_it_ended(request: RequestSnapshot) -> str:
    when = datetime.fromtimestamp(request.updated_ms / 1000, UTC).strftime("%Y-%m-%d %H:%M UTC")
    if request.state is RequestState.APPLIED:
        by = ", ".join(a.user_id for a in request.approvals) or "the policy (no approval needed)"
        return f"it was applied at {when}, approved by {by}"
    reason = f" ({request.reason})" if request.reason else ""
    return f"it is {request.state.value} since {when}{reason}"


async def _why_still_applying(services: Services) -> str:
    try:
        await asyncio.wait_for(services.registry.ping(), 2.0)
    except Exception:
        return "MLflow is unreachable, Signoff keeps retrying"
    return "the transition is being applied in MLflow"
