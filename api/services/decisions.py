"""Deciding a request: approve, reject or cancel, whoever asks (the API's routes, an inbound
decision webhook), on one path, so quorum, no self-approval and levels are the workflow's
rules for every way in."""

from __future__ import annotations

import logging
from typing import Literal

from api.deps import Services
from api.services.errors import Invalid, NotFound, Refused
from workflows.client import DecisionRefused, NoOpenRequest, Transitions
from workflows.domain import AuditEntry
from workflows.messages import Decision

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
) -> AuditEntry:
    """`approve`, `reject` or `cancel` the open request for that target, as `decision.principal`
    (the workflow's validators apply the policy: quorum, no self-approval, levels)."""
    try:
        entry = await transitions.decide(action, name, version, stage, decision)
    except NoOpenRequest as err:
        raise NotFound(
            f"there is no open request to move version {version} of {name!r} to {stage}"
        ) from err
    except DecisionRefused as err:
        if err.not_open:
            raise Invalid(err.reason) from err
        raise Refused(err.reason) from err
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
