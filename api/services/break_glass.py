"""Break-glass: a direct stage transition (or, through the front door, an alias set on a
version), applied at once without checks or approvals.

Only for a principal holding CAN_MANAGE on the model, only where the policy rule for the
target says `break_glass: true`, and only with a comment saying why. It is recorded as an
`APPLIED_TRANSITION` audit entry whose `system_comment` starts with "Break-glass" (and whose
id starts with `breakglass-`), announced to the registry webhooks like any other transition, and
opens a review the policy's reviewers must acknowledge (`api.services.break_glass_reviews`).

The order of the refusals: Refused without CAN_MANAGE, Refused where the rule does not allow
break-glass, Invalid without a comment, NotFound for an unknown model or version, Invalid if
the version is already in the stage, Invalid with MLflow's message if MLflow refuses,
Unavailable if MLflow or Temporal cannot be reached. Nothing in MLflow changes before every
refusal has had its chance.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from api.deps import Services
from api.services.break_glass_reviews import open_review
from api.services.errors import Conflict, Invalid, Refused
from api.services.mlflow import existing_version, mlflow_failure
from api.services.permissions import require_permission
from policies import (
    PermissionLevel,
    Principal,
    TransitionRule,
    closed_because,
    is_alias,
    rule_for,
)
from workflows.domain import AuditEntry, AuditType, BreakGlassReview, RequestSnapshot, now_ms
from workflows.mlflow_client import MlflowError, ModelVersion
from workflows.moves import AlreadyMoved, MoveInProgress, move_version
from workflows.webhooks.events import transition_events

log = logging.getLogger(__name__)

BREAK_GLASS_PREFIX = "breakglass-"


@dataclass(frozen=True)
class BreakGlassMove:
    """What a break-glass transition did: the version as MLflow answered after the move."""

    moved: ModelVersion
    granted: PermissionLevel
    """The principal's level on the model."""
    open_requests: list[RequestSnapshot]
    """The version's open requests (they stay open)."""
    review: BreakGlassReview | None = None
    """The after-the-fact review the move opened (`api.services.break_glass_reviews`)."""


async def break_glass(
    services: Services,
    *,
    principal: Principal,
    name: str,
    version: str,
    stage: str,
    archive_existing_versions: bool,
    comment: str | None,
) -> BreakGlassMove:
    """Move the version to `stage` now, record it and announce it."""
    granted = require_permission(services, principal, name, PermissionLevel.CAN_MANAGE)
    current = await existing_version(services, name, version)
    # The rule is chosen as a request's would be: by the version's tags (risk tiers).
    rule = _allowing_rule(services, name, stage, current.tags)
    if comment is None or not comment.strip():
        raise Invalid(
            "a break-glass transition needs a comment saying why it cannot wait for the "
            "governed path; send a non-empty `comment`"
        )
    if is_alias(stage) and stage.removeprefix("@") in current.aliases:
        raise Invalid(f"version {version} of {name!r} is already {stage}")
    if current.current_stage == stage:
        raise Invalid(f"version {version} of {name!r} is already in {stage}")
    # Connect to Temporal before MLflow changes: if it is down, answer 503 with nothing done,
    # rather than apply a transition that could not be announced.
    await services.transitions()
    open_requests = await services.ledger.requests.search(
        model=name, version=version, open_only=True
    )

    breakglass_id = f"{BREAK_GLASS_PREFIX}{uuid.uuid4().hex}"
    moved = await _apply(services, current, stage, archive_existing_versions, breakglass_id)

    entry = await _record(
        services,
        principal,
        current=current,
        stage=stage,
        comment=comment,
        archive_existing_versions=archive_existing_versions,
        open_requests=open_requests,
        breakglass_id=breakglass_id,
    )
    await _announce(services, entry, principal)
    review = await open_review(services, rule, entry)
    return BreakGlassMove(moved=moved, granted=granted, open_requests=open_requests, review=review)


def _allowing_rule(
    services: Services, name: str, stage: str, tags: Mapping[str, str]
) -> TransitionRule:
    """The policy rule for the target and the version's tags, if it allows break-glass."""
    rule = rule_for(services.policy, name, stage, tags)
    if rule is None:
        raise Refused(
            f"break-glass refused: no rule of the policy (policy {services.policy_hash[:12]}) "
            f"covers moving {name!r} to {stage}, so nothing allows a direct transition"
        )
    if not rule.break_glass:
        raise Refused(
            f"break-glass refused: the policy rule for {name!r} to {rule.to} "
            f"(models {', '.join(rule.models)}; policy {services.policy_hash[:12]}) does not "
            "set `break_glass: true`; request the transition through transition-requests/create"
        )
    return rule


async def _record(
    services: Services,
    principal: Principal,
    *,
    current: ModelVersion,
    stage: str,
    comment: str,
    archive_existing_versions: bool,
    open_requests: list[RequestSnapshot],
    breakglass_id: str,
) -> AuditEntry:
    """Append the break-glass audit entry (after the move: MLflow is the record of truth)."""
    name, version = current.name, current.version
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
            services,
            principal,
            from_stage=current.current_stage,
            stage=stage,
            archive_existing_versions=archive_existing_versions,
            open_requests=open_requests,
        )
        + _window_note(services, current, stage),
        creation_timestamp=now_ms(),
    )
    await services.ledger.requests.append_entries(entries=[entry])
    log.warning(
        "break-glass: %s moved version %s of %r from %s to %s (audit entry %s)",
        principal.sub,
        version,
        name,
        current.current_stage,
        stage,
        breakglass_id,
    )
    return entry


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
        raise Conflict(
            f"another transition of version {version} of {name!r} is being applied right now; "
            "check the version and try again if it is still needed",
        ) from err
    except AlreadyMoved as err:
        raise Invalid(
            f"version {version} of {name!r} moved to {err.current_stage} meanwhile; nothing was "
            "changed"
        ) from err
    except MlflowError as err:
        # No break-glass audit entry is recorded: if MLflow did move the version after all (a
        # lost answer), the detector is right to report a change Signoff did not record.
        raise mlflow_failure(err, name=name, version=version, refused="the transition") from err
    if moved is None:  # an alias: MLflow answers nothing, and the version now carries it
        return replace(current, aliases=sorted({*current.aliases, stage.removeprefix("@")}))
    return moved


def _window_note(services: Services, current: ModelVersion, stage: str) -> str:
    """Break-glass ignores change windows and freezes; when it applied outside one, say so."""
    rule = rule_for(services.policy, current.name, stage, current.tags) or rule_for(
        services.policy, current.name, stage
    )
    closed = closed_because(rule.windows, rule.freezes, datetime.now(UTC)) if rule else None
    return f"; break-glass ignores change windows and freezes: applied {closed}" if closed else ""


def _system_comment(
    services: Services,
    principal: Principal,
    *,
    from_stage: str,
    stage: str,
    archive_existing_versions: bool,
    open_requests: list[RequestSnapshot],
) -> str:
    parts = [
        f"Break-glass transition by {principal.sub} (CAN_MANAGE) from {from_stage} to {stage}, "
        f"applied directly without checks or approvals; the policy rule for {stage} allows "
        f"break_glass (policy {services.policy_hash[:12]})"
    ]
    if archive_existing_versions and stage in ("Staging", "Production"):
        parts.append(f"other versions in {stage} archived")
    same_target = [request for request in open_requests if request.target == stage]
    if same_target:
        listed = ", ".join(f"{r.id} by {r.requester} ({r.state.value})" for r in same_target)
        parts.append(f"the open request for the same target stays open: {listed}")
    return "; ".join(parts)


async def _announce(services: Services, entry: AuditEntry, principal: Principal) -> None:
    from_stage, stage = entry.from_stage, entry.to_stage
    assert from_stage is not None and stage is not None  # a break-glass entry has both
    events = transition_events(
        entry.id,
        model=entry.model,
        version=entry.version,
        to_stage=stage,
        from_stage=from_stage,
        comment=entry.comment,
        event_timestamp=entry.creation_timestamp,
        text=(
            f"Break-glass transition by {principal.sub}: version {entry.version} of "
            f"{entry.model} moved from {from_stage} to {stage} directly, without checks or "
            "approvals."
        ),
    )
    await services.announce(events)
