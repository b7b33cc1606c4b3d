"""Transition requests on the wire: Databricks' bodies and `TransitionRequest`, plus what
Signoff adds (state, checks, approvals), and an open request listed as Databricks lists it."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from api.models.common import Body, Comment, ModelName, Target, Version
from api.models.errors import ErrorResponse
from policies import (
    GithubRun,
    Policy,
    Principal,
    approval_refusal,
    cancel_refusal,
    rejection_refusal,
    request_rule,
)
from workflows.domain import (
    Approval,
    ArtifactDigest,
    CheckResult,
    CheckStatus,
    RequestSnapshot,
    RequestState,
    RollbackMark,
)

ActivityAction = Literal[
    "APPROVE_TRANSITION_REQUEST", "REJECT_TRANSITION_REQUEST", "CANCEL_TRANSITION_REQUEST"
]


# -- requests --------------------------------------------------------------------------------


class CreateTransitionRequest(Body):
    name: ModelName
    version: Version
    stage: Target
    comment: Comment = None


class RejectTransitionRequest(Body):
    name: ModelName
    version: Version
    stage: Target
    comment: Comment = None


class ApproveTransitionRequest(RejectTransitionRequest):
    archive_existing_versions: bool = Field(
        False, description="Accepted for compatibility; the policy rule decides."
    )


# -- responses ---------------------------------------------------------------------------------


def available_actions(
    policy: Policy, request: RequestSnapshot, viewer: Principal
) -> list[ActivityAction]:
    """What the viewer may do with the request now, as Databricks' ActivityAction values."""
    if request.state not in (RequestState.PENDING, RequestState.SCHEDULED):
        return []
    actions: list[ActivityAction] = []
    rule = request_rule(policy, request)
    common = {"model": request.model, "target": request.target, "principal": viewer}
    if rule is not None and request.state is RequestState.PENDING:
        approvers = [approval.user_id for approval in request.approvals]
        if not approval_refusal(
            policy, rule, requester=request.requester, approvers=approvers, **common
        ):
            actions.append("APPROVE_TRANSITION_REQUEST")
        if not rejection_refusal(policy, rule, **common):
            actions.append("REJECT_TRANSITION_REQUEST")
    if not cancel_refusal(
        policy, model=request.model, requester=request.requester, principal=viewer
    ):
        actions.append("CANCEL_TRANSITION_REQUEST")
    return actions


class Check(BaseModel):
    """One check of the rule and how it stands."""

    name: str = Field(description="The check's id, e.g. metric:auc or github_actions:o/r/f.")
    type: str
    status: CheckStatus
    summary: str
    evidence: dict[str, Any]
    finished_timestamp: int | None = Field(description="Epoch milliseconds; null while running.")

    @classmethod
    def of(cls, check: CheckResult) -> Check:
        return cls(
            name=check.check_id,
            type=check.type,
            status=check.status,
            summary=check.summary,
            evidence=check.evidence,
            finished_timestamp=check.finished_ms,
        )


class RequestApproval(BaseModel):
    user_id: str
    creation_timestamp: int = Field(description="Epoch milliseconds.")
    comment: str | None
    roles: list[str] = Field(
        default_factory=list,
        description="The roles in which the approver approved, as they held them then (empty "
        "for approvals recorded before Signoff kept them).",
    )

    @classmethod
    def of(cls, approval: Approval) -> RequestApproval:
        return cls(**approval.model_dump())


def _request_fields(
    request: RequestSnapshot, *, policy: Policy, viewer: Principal
) -> dict[str, Any]:
    """What Databricks' TransitionRequest and its listed activity share, for `viewer`."""
    return {
        "id": request.id,
        "creation_timestamp": request.created_ms,
        "last_updated_timestamp": request.updated_ms,
        "from_stage": request.from_stage,
        "to_stage": request.target,
        "user_id": request.requester,
        "comment": request.comment,
        "available_actions": available_actions(policy, request, viewer),
        "state": request.state,
    }


class TransitionRequest(BaseModel):
    """Databricks' TransitionRequest, plus Signoff's view of the request's progress."""

    id: str
    name: str
    version: str
    creation_timestamp: int = Field(description="Epoch milliseconds.")
    last_updated_timestamp: int = Field(description="Epoch milliseconds.")
    from_stage: str | None
    to_stage: str
    user_id: str = Field(description="Who requested it.")
    comment: str | None
    available_actions: list[ActivityAction]
    state: RequestState
    reason: str | None
    policy_hash: str
    quorum: int
    approvals: list[RequestApproval]
    checks: list[Check]
    apply_at: int | None = Field(
        None, description="While SCHEDULED: when the change window opens and it applies (ms)."
    )
    digest: ArtifactDigest | None = Field(
        None, description="What is approved: the version's source, run and artifact manifest."
    )
    tags: dict[str, str] = Field(
        default_factory=dict, description="The tags the policy's risk tiers read, pinned."
    )
    tier: dict[str, str] = Field(
        default_factory=dict, description="The tags that met the applied rule's `when`."
    )
    rollback: RollbackMark | None = Field(None, description="Set on a governed rollback.")
    github: GithubRun | None = Field(
        None,
        description="The GitHub Actions run whose OIDC token opened the request; its "
        "deployments wait on it (`github:` rules).",
    )

    @classmethod
    def of(
        cls, request: RequestSnapshot, *, policy: Policy, viewer: Principal
    ) -> TransitionRequest:
        return cls(
            **_request_fields(request, policy=policy, viewer=viewer),
            name=request.model,
            version=request.version,
            reason=request.reason,
            policy_hash=request.policy_hash,
            quorum=request.quorum,
            approvals=[RequestApproval.of(approval) for approval in request.approvals],
            checks=[Check.of(check) for check in request.checks],
            apply_at=request.apply_at_ms,
            digest=request.digest,
            tags=request.tags,
            tier=request.tier,
            rollback=request.rollback,
            github=request.github,
        )


class OpenRequestActivity(BaseModel):
    """An open request as Databricks lists it: a REQUESTED_TRANSITION activity."""

    activity_type: Literal["REQUESTED_TRANSITION"] = "REQUESTED_TRANSITION"
    id: str
    creation_timestamp: int = Field(description="Epoch milliseconds.")
    last_updated_timestamp: int = Field(description="Epoch milliseconds.")
    from_stage: str | None
    to_stage: str
    user_id: str
    comment: str | None
    available_actions: list[ActivityAction]
    state: RequestState

    @classmethod
    def of(
        cls, request: RequestSnapshot, *, policy: Policy, viewer: Principal
    ) -> OpenRequestActivity:
        return cls(**_request_fields(request, policy=policy, viewer=viewer))


class TransitionRequestResponse(BaseModel):
    """`{"request": ...}`."""

    request: TransitionRequest


class TransitionRequestList(BaseModel):
    """`{"requests": [...]}`: requests across versions, newest first."""

    requests: list[TransitionRequest]


class OpenRequestList(BaseModel):
    """`{"requests": [...]}`: a version's open requests, as Databricks lists them."""

    requests: list[OpenRequestActivity]


class TransitionRequestConflict(ErrorResponse):
    """409: the open request for the same target (`request`) must be decided first."""

    request: TransitionRequest
