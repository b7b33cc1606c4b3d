"""A decision made by a chat or ticket tool's user (an inbound decision hook, a Slack button):
the tool's user becomes a principal through the policy's `directory:` for that source, and
the decision then goes through `services.decisions.decide`, exactly the API's path, so quorum,
no self-approval and levels are the workflow's rules for every way in."""

from __future__ import annotations

from typing import Any

from api.deps import Services
from api.models.activities import DecisionResponse
from api.models.hooks import DecisionHook
from api.services.decisions import decide
from api.services.errors import Invalid, NotFound, Refused
from api.services.permissions import require_permission
from policies import PermissionLevel, Principal, principal_for
from workflows.client import NoOpenRequest
from workflows.messages import Decision


def directory_principal(services: Services, source: str, user: str) -> Principal:
    """The principal a tool's user acts as; Refused when the directory does not list them."""
    principal = principal_for(services.policy, source, user)
    if principal is None:
        raise Refused(
            f"user {user!r} of source {source!r} is not in the policy's directory; add "
            f"them under directory.{source} with their subject and roles"
        )
    return principal


async def _target(services: Services, body: DecisionHook) -> tuple[str, str, str, str | None]:
    """(name, version, stage, request id or None) the message decides."""
    if body.request_id is None:
        assert body.name and body.version and body.stage  # the model validator ensured it
        return body.name, body.version, body.stage, None
    request = await services.ledger.requests.get(body.request_id)
    if request is None:
        raise NotFound(f"no transition request with id {body.request_id!r}")
    return request.model, request.version, request.target, request.id


async def _ensure_still_open(
    services: Services, name: str, version: str, stage: str, request_id: str
) -> None:
    """A request named by id must be the one open now: deciding by target could otherwise land
    on a newer request for the same target that the person never saw."""
    transitions = await services.transitions()
    try:
        live = await transitions.snapshot(name, version, stage)
    except NoOpenRequest:
        live = None
    if live is None or live.id != request_id or not live.state.is_open:
        raise Invalid(f"transition request {request_id!r} is no longer open")


async def decide_as_directory_user(
    services: Services, source: str, body: DecisionHook, record: dict[str, Any]
) -> DecisionResponse:
    """Decide as the directory's principal for the tool's user, on exactly the API's path."""
    principal = directory_principal(services, source, body.user)
    name, version, stage, request_id = await _target(services, body)
    record["request_id"] = request_id
    require_permission(services, principal, name, PermissionLevel.CAN_READ)
    if request_id is not None:
        await _ensure_still_open(services, name, version, stage, request_id)
    transitions = await services.transitions()
    decision = Decision(principal=principal, comment=body.comment)
    result = await decide(
        services,
        transitions,
        action=body.decision,
        name=name,
        version=version,
        stage=stage,
        decision=decision,
    )
    record["request_id"] = result.entry.request_id or request_id
    return DecisionResponse.of(result)
