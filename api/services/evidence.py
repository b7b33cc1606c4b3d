"""The evidence packet of a request or a break-glass move: gathered from the ledger (the
request, its trail, the version's comments, the pinned policy, the review) and MLflow (the
version), then assembled by `build_packet`, which takes everything as plain values.

Sections other parts of Signoff add later arrive as `build_packet`'s keyword arguments
(`artifact_digest`, `audit_chain_head`); until a caller passes one, it is null in the packet
and `notes` says "not recorded".
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import yaml
from pydantic import ValidationError

from api.deps import Services
from api.models.evidence import (
    NOT_RECORDED,
    EvidenceAcknowledgement,
    EvidenceCheck,
    EvidenceComment,
    EvidenceDecision,
    EvidenceEntry,
    EvidenceModelVersion,
    EvidencePacket,
    EvidencePolicy,
    EvidenceReview,
    EvidenceRule,
    EvidenceSubject,
)
from api.services.break_glass import BREAK_GLASS_PREFIX
from api.services.errors import NotFound
from api.services.permissions import has_binding, require_permission
from api.services.requests import readable_request
from policies import PermissionLevel, Policy, Principal, approver_roles, policy_hash
from policies.explain import explain
from policies.wording import describe_check, describe_rule_parts
from workflows.domain import AuditEntry, AuditType, BreakGlassReview, RequestSnapshot, now_ms
from workflows.ledger import Comment
from workflows.mlflow_client import MlflowError, ModelVersion

_DECISIONS = {
    AuditType.APPROVED_REQUEST: "approval",
    AuditType.REJECTED_REQUEST: "rejection",
    AuditType.CANCELLED_REQUEST: "cancellation",
}


@dataclass
class EvidenceInputs:
    """Everything a packet is made of, gathered."""

    subject: EvidenceSubject
    trail: list[AuditEntry]
    comments: list[Comment]
    pinned_hash: str
    pinned: Policy | None
    current_hash: str
    version: ModelVersion | None
    mlflow_ui: str
    snapshot: RequestSnapshot | None = None
    review: BreakGlassReview | None = None
    notes: dict[str, str] = field(default_factory=dict)


def _policy_section(inputs: EvidenceInputs) -> EvidencePolicy:
    pinned = inputs.pinned
    if pinned is None:
        return EvidencePolicy(hash=inputs.pinned_hash, is_current=False)
    document = pinned.model_dump(mode="json")
    return EvidencePolicy(
        hash=inputs.pinned_hash,
        text=yaml.safe_dump(document, sort_keys=False, allow_unicode=True),
        document=document,
        hash_verified=policy_hash(pinned) == inputs.pinned_hash,
        is_current=inputs.pinned_hash == inputs.current_hash,
    )


def _rule_section(inputs: EvidenceInputs) -> EvidenceRule | None:
    if inputs.pinned is None:
        return None
    s = inputs.subject
    explained = explain(inputs.pinned, model=s.model, target=s.target)
    if explained.rule_index is None:
        return None
    rule = inputs.pinned.transitions[explained.rule_index]
    return EvidenceRule(
        index=explained.rule_index,
        label=explained.rule_label or "",
        words=explained.words or "",
        parts=describe_rule_parts(rule),
        approver_roles=approver_roles(inputs.pinned, rule, model=s.model, target=s.target),
        quorum=rule.approvals.quorum,
        self_approval=rule.approvals.self_approval,
        expires_after=explained.expires_after or "",
        checks=explained.checks,
    )


def _checks(inputs: EvidenceInputs) -> list[EvidenceCheck]:
    if inputs.snapshot is None:
        return []
    wanted: dict[str, str] = {}
    if inputs.pinned is not None:
        explained = explain(
            inputs.pinned,
            model=inputs.subject.model,
            target=inputs.subject.target,
            tags=inputs.snapshot.tags,
        )
        if explained.rule_index is not None:
            rule = inputs.pinned.transitions[explained.rule_index]
            wanted = {check.check_id: describe_check(check) for check in rule.checks}
    return [
        EvidenceCheck(
            check_id=c.check_id,
            type=c.type,
            status=c.status.value,
            requirement=wanted.get(c.check_id),
            summary=c.summary,
            evidence=c.evidence,
            finished_timestamp=c.finished_ms,
        )
        for c in inputs.snapshot.checks
    ]


def _entry(e: AuditEntry) -> EvidenceEntry:
    return EvidenceEntry(
        id=e.id,
        activity_type=e.activity_type.value,
        user_id=e.user_id,
        roles=e.roles,
        from_stage=e.from_stage,
        to_stage=e.to_stage,
        comment=e.comment,
        system_comment=e.system_comment,
        timestamp=e.creation_timestamp,
    )


def _review(review: BreakGlassReview) -> EvidenceReview:
    return EvidenceReview(
        id=review.id,
        state=review.state,
        roles=review.roles,
        quorum=review.quorum,
        opened_timestamp=review.opened_ms,
        deadline_timestamp=review.deadline_ms,
        overdue_timestamp=review.overdue_ms,
        acknowledged_timestamp=review.acknowledged_ms,
        acknowledgements=[
            EvidenceAcknowledgement(
                user_id=a.user_id, roles=a.roles, comment=a.comment, timestamp=a.creation_timestamp
            )
            for a in review.acknowledgements
        ],
    )


def _model_version(inputs: EvidenceInputs) -> EvidenceModelVersion:
    s, v, base = inputs.subject, inputs.version, inputs.mlflow_ui
    name = quote(s.model, safe="")
    run_id = v.run_id if v else None
    return EvidenceModelVersion(
        name=s.model,
        version=s.version,
        source=v.source if v else None,
        run_id=run_id,
        current_stage=v.current_stage if v else None,
        aliases=list(v.aliases) if v else [],
        version_url=f"{base}/#/models/{name}/versions/{quote(s.version, safe='')}",
        run_url=f"{base}/#/runs/{quote(run_id, safe='')}" if run_id else None,
    )


def build_packet(
    inputs: EvidenceInputs,
    *,
    generated_by: str,
    artifact_digest: dict[str, Any] | None = None,
    audit_chain_head: dict[str, Any] | None = None,
) -> EvidencePacket:
    """The packet from what was gathered. `artifact_digest` (the request's pinned digest) and
    `audit_chain_head` (the chain's hash of the subject's last entry) are null and noted as
    "not recorded" until the caller has them."""
    notes = dict(inputs.notes)
    if artifact_digest is None:
        notes["artifact_digest"] = NOT_RECORDED
    if audit_chain_head is None:
        notes["audit_chain_head"] = NOT_RECORDED
    if inputs.pinned is None:
        notes["policy"] = (
            "the pinned policy's text is not in the ledger (the request was opened before "
            "Signoff kept policies by hash); only its hash is on record"
        )
    if inputs.version is None:
        notes["model_version"] = "MLflow did not answer; source and run are not shown"
    return EvidencePacket(
        generated_timestamp=now_ms(),
        generated_by=generated_by,
        subject=inputs.subject,
        model_version=_model_version(inputs),
        artifact_digest=artifact_digest,
        rule=_rule_section(inputs),
        policy=_policy_section(inputs),
        checks=_checks(inputs),
        decisions=[
            EvidenceDecision(
                kind=_DECISIONS[e.activity_type],
                user_id=e.user_id,
                roles=e.roles,
                timestamp=e.creation_timestamp,
                comment=e.comment,
            )
            for e in inputs.trail
            if e.activity_type in _DECISIONS
        ],
        comments=[
            EvidenceComment(
                id=c.id,
                user_id=c.user_id,
                comment=c.comment,
                created_timestamp=c.created_ms,
                updated_timestamp=c.updated_ms,
            )
            for c in inputs.comments
        ],
        trail=[_entry(e) for e in inputs.trail],
        break_glass_review=_review(inputs.review) if inputs.review else None,
        audit_chain_head=audit_chain_head,
        notes=notes,
    )


# -- gathering --------------------------------------------------------------------------------


async def _pinned(services: Services, pinned_hash: str) -> Policy | None:
    if pinned_hash == services.policy_hash:
        return services.policy
    document = await services.ledger.policies.get(pinned_hash)
    if document is None:
        return None
    try:
        return Policy.model_validate(document)
    except ValidationError:
        return None


async def _version(services: Services, name: str, version: str) -> ModelVersion | None:
    try:
        return await services.registry.get_model_version(name, version)
    except MlflowError:
        return None


async def _request_inputs(
    services: Services, request: RequestSnapshot, mlflow_ui: str
) -> EvidenceInputs:
    trail = await services.ledger.requests.audit_trail(request.model, request.version)
    return EvidenceInputs(
        subject=EvidenceSubject(
            kind="transition_request",
            id=request.id,
            model=request.model,
            version=request.version,
            target=request.target,
            from_stage=request.from_stage,
            state=request.state.value,
            reason=request.reason,
            requester=request.requester,
            comment=request.comment,
            created_timestamp=request.created_ms,
            updated_timestamp=request.updated_ms,
        ),
        trail=[e for e in trail if e.request_id == request.id],
        comments=await services.ledger.comments.on_version(request.model, request.version),
        pinned_hash=request.policy_hash,
        pinned=await _pinned(services, request.policy_hash),
        current_hash=services.policy_hash,
        version=await _version(services, request.model, request.version),
        mlflow_ui=mlflow_ui,
        snapshot=request,
    )


async def _break_glass_inputs(
    services: Services, entry: AuditEntry, mlflow_ui: str
) -> EvidenceInputs:
    review = await services.ledger.reviews.get(entry.id)
    pinned_hash = review.policy_hash if review else services.policy_hash
    notes = {} if review else {"break_glass_review": "no review was opened for this move"}
    return EvidenceInputs(
        subject=EvidenceSubject(
            kind="break_glass",
            id=entry.id,
            model=entry.model,
            version=entry.version,
            target=entry.to_stage or "",
            from_stage=entry.from_stage,
            state="APPLIED",
            reason=entry.system_comment,
            requester=entry.user_id,
            comment=entry.comment,
            created_timestamp=entry.creation_timestamp,
            updated_timestamp=entry.creation_timestamp,
        ),
        trail=[entry],
        comments=await services.ledger.comments.on_version(entry.model, entry.version),
        pinned_hash=pinned_hash,
        pinned=await _pinned(services, pinned_hash),
        current_hash=services.policy_hash,
        version=await _version(services, entry.model, entry.version),
        mlflow_ui=mlflow_ui,
        review=review,
        notes=notes,
    )


async def evidence_for(
    services: Services, *, subject_id: str, principal: Principal
) -> EvidencePacket:
    """The packet of a request (by id) or a break-glass move (by its `breakglass-…` entry
    id), for a principal with CAN_READ on its model (404 as for a missing one otherwise)."""
    mlflow_ui = services.settings.mlflow_tracking_uri.rstrip("/")
    if subject_id.startswith(BREAK_GLASS_PREFIX):
        entry = await services.ledger.requests.entry(subject_id)
        if entry is None or not has_binding(services, principal, entry.model):
            raise NotFound(f"no break-glass move with id {subject_id!r}")
        require_permission(services, principal, entry.model, PermissionLevel.CAN_READ)
        inputs = await _break_glass_inputs(services, entry, mlflow_ui)
    else:
        request = await readable_request(services, request_id=subject_id, principal=principal)
        inputs = await _request_inputs(services, request, mlflow_ui)
    return build_packet(
        inputs,
        generated_by=principal.sub,
        artifact_digest=_digest(inputs),
        audit_chain_head=await _chain_head(services, inputs),
    )


def _digest(inputs: EvidenceInputs) -> dict[str, Any] | None:
    """The artifact digest pinned when the request opened (none on a break-glass move)."""
    snapshot = inputs.snapshot
    if snapshot is None or snapshot.digest is None:
        return None
    return snapshot.digest.model_dump(mode="json")


async def _chain_head(services: Services, inputs: EvidenceInputs) -> dict[str, Any] | None:
    """The audit chain's place and hash of the subject's last trail entry: what an auditor
    finds again in an audit export (`signoff audit verify`) to tie this packet to the chain."""
    if not inputs.trail:
        return None
    last = inputs.trail[-1]
    place = await services.ledger.audit.place(last.id)
    if place is None:
        return None
    chain_seq, entry_hash = place
    return {"entry_id": last.id, "chain_seq": chain_seq, "entry_hash": entry_hash}
