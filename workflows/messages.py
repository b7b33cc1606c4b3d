"""Temporal's messages: workflow inputs, update arguments, activity inputs and outputs.

They are pydantic models because the pinned policy is one; the client and worker both use
`temporalio.contrib.pydantic.pydantic_data_converter`. Keep them small: everything here lands
in workflow history, and a field renamed here must still read the histories already written.
"""

from __future__ import annotations

import hashlib
from datetime import timedelta
from typing import Literal

from pydantic import AliasChoices, BaseModel, Field

from policies import (
    BreakGlassReview,
    Check,
    CiCheck,
    Notify,
    Policy,
    Principal,
    TransitionRule,
    approver_roles,
)
from workflows.ci.base import CiRunRef
from workflows.domain import (
    ArtifactDigest,
    AuditEntry,
    CheckResult,
    CheckStatus,
    RequestSnapshot,
    RequestState,
    ReviewState,
    RollbackMark,
)
from workflows.domain import BreakGlassReview as ReviewRecord
from workflows.webhooks.events import WebhookEvent


class VersionSource(BaseModel):
    """Where a version's files come from, as the API read it when the request opened (MLflow
    never changes them for a version): what the digest at open lists without reading the
    version again."""

    source: str | None = None
    run_id: str | None = None
    model_id: str | None = None


class TransitionInput(BaseModel):
    """Everything a request needs, fixed at start: the policy is pinned here."""

    request_id: str
    model: str
    version: str
    target: str
    from_stage: str
    requester: Principal
    comment: str | None = None
    policy: Policy
    rule: TransitionRule
    policy_hash: str
    created_ms: int
    tags: dict[str, str] = Field(default_factory=dict)
    """The version's tags (over its model's) the policy's conditions read, when it opened."""
    rollback: RollbackMark | None = None
    opened: VersionSource | None = None
    """The version's source as the API read it (None from callers before it: read again)."""

    def opening_snapshot(self, workflow_id: str, run_id: str | None) -> RequestSnapshot:
        """The request as it stands the moment its workflow starts."""
        return RequestSnapshot(
            id=self.request_id,
            workflow_id=workflow_id,
            run_id=run_id,
            model=self.model,
            version=self.version,
            target=self.target,
            from_stage=self.from_stage,
            requester=self.requester.sub,
            comment=self.comment,
            state=RequestState.PENDING,
            policy_hash=self.policy_hash,
            quorum=self.rule.approvals.quorum,
            checks=[
                CheckResult(check_id=check.check_id, type=check.type, status=CheckStatus.RUNNING)
                for check in self.rule.checks
            ],
            created_ms=self.created_ms,
            updated_ms=self.created_ms,
            approver_roles=approver_roles(
                self.policy, self.rule, model=self.model, target=self.target
            ),
            self_approval=self.rule.approvals.self_approval,
            tags=self.tags,
            tier=self.rule.when.matched(self.tags) if self.rule.when else {},
            rollback=self.rollback,
            github=self.requester.github,
            github_gate=self.rule.github if self.requester.github else None,
        )


class Decision(BaseModel):
    """Argument of the approve / reject / cancel updates. The principal comes from a verified
    token: the API authenticated it before calling the workflow."""

    principal: Principal
    comment: str | None = None


class DecisionResult(BaseModel):
    """Result of the approve / reject / cancel updates: the audit entry the decision made, and
    where the request stands once the decision took effect (for the approval that completes
    the quorum: after the transition is applied, or after `APPLY_WAIT` while it is still
    being applied)."""

    entry: AuditEntry
    state: RequestState
    reason: str | None = None
    approvals: int
    quorum: int
    apply_at_ms: int | None = None
    """While SCHEDULED: when the change window opens and the move applies."""
    ledger: LedgerUpdate | None = None
    """The request as the workflow holds it when it answers, with the entries its outbox has
    not yet confirmed written: the caller records them (idempotent, revision-guarded) so its
    own next read sees its decision. None from workers before it."""


class Superseded(BaseModel):
    """Argument of the `superseded` signal: Signoff moved the version by another request, so
    a request that started from the version's old stage no longer holds."""

    request_id: str
    from_stage: str
    to_stage: str


class SupersedeInput(BaseModel):
    """Input of `close_superseded`: the move Signoff just applied."""

    request_id: str
    model: str
    version: str
    from_stage: str
    to_stage: str


class LedgerUpdate(BaseModel):
    snapshot: RequestSnapshot
    entries: list[AuditEntry] = Field(
        default_factory=list, validation_alias=AliasChoices("entries", "activities")
    )
    """Named `activities` before 0.2: a `record_ledger` task scheduled by an older worker still
    carries that name, and must not lose its entries."""
    notify: Notify = Field(default_factory=Notify)
    """The rule's `notify:`; a request with `notify.slack` is followed by a Slack message,
    updated from the ledger after each write (`workflows.slack.message`)."""


class ChangeUpdate(BaseModel):
    """Input of `record_changes`: what one state change of a request hands on, in one
    activity: the request copied to the ledger, its webhook events announced, and (the move
    that applied a stage) the other open requests it supersedes told."""

    ledger: LedgerUpdate
    events: list[WebhookEvent] = Field(default_factory=list)
    supersede: SupersedeInput | None = None


class DigestInput(BaseModel):
    """Input of `digest_artifacts`: the version whose artifacts a request pins."""

    request_id: str
    model: str
    version: str
    max_file_mb: float | None = None
    """The pinned digest's size limit when verifying; None: the worker's setting."""
    source: VersionSource | None = None
    """At open: the version as the API read it, so the activity does not read it again."""


class CheckInput(BaseModel):
    request_id: str
    model: str
    version: str
    target: str
    check: Check


class ApplyInput(BaseModel):
    request_id: str
    model: str
    version: str
    target: str
    from_stage: str
    archive_existing_versions: bool
    pinned: ArtifactDigest | None = None
    """The digest pinned when the request opened: the activity takes the digest again and
    compares, in the attempt that moves the version (runs from before compare in an activity
    of its own first, and send None)."""


class ApplyOutcome(BaseModel):
    """`already_applied` is set when a retried attempt finds its own earlier work done."""

    from_stage: str
    to_stage: str
    already_applied: bool = False
    archived_versions: list[str] = Field(default_factory=list)


# --------------------------------------------------------------------------------------------
# CI checks (github_actions, jenkins): dispatch, poll, callback
# --------------------------------------------------------------------------------------------

MAX_CALLBACK_SUMMARY = 2_000
"""Longest summary a CI callback may carry: it lands in workflow history and the ledger."""


def callback_token_digest(token: str) -> str:
    """What Signoff keeps and compares of a callback token: its hex SHA-256. The plaintext goes
    to the CI job only; neither workflow history nor the ledger ever holds it."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


class CiDispatchInput(BaseModel):
    """Input of the `dispatch_ci` activity. No callback token: the activity makes one (a
    workflow's randomness is derived from its run id, so it cannot make a secret)."""

    check: CiCheck
    request_id: str
    model: str
    version: str
    target: str


class CiDispatched(BaseModel):
    """Output of `dispatch_ci`: how to find the job, and the digest of its callback token."""

    ref: CiRunRef
    token_sha256: str


class CiPollInput(BaseModel):
    check: CiCheck
    ref: CiRunRef


class CiCallback(BaseModel):
    """Argument of the `ci_callback` update: a CI job reporting its check's outcome.

    Authenticated by the digest of the per-check callback token the job was given, or by
    `principal`, whom the API authenticated (bearer JWT) and authorized (CAN_READ) first."""

    check_id: str
    passed: bool
    details_url: str | None = None
    summary: str = Field("", max_length=MAX_CALLBACK_SUMMARY)
    callback_token_sha256: str | None = Field(None, repr=False)
    principal: Principal | None = None


# --------------------------------------------------------------------------------------------
# GitHub deployments waiting on Signoff (workflows.deployments)
# --------------------------------------------------------------------------------------------


class DeploymentEvent(BaseModel):
    """A `deployment_protection_rule` event (`action: requested`), verified and checked by the
    API: the deployment of `repository`'s run `run_id` to `environment` waits for an answer."""

    delivery_id: str
    repository: str
    """`owner/name`, as the event's `repository.full_name`."""
    repository_id: str
    run_id: str
    """From the event's `deployment_callback_url`, checked against SIGNOFF_GITHUB_API_URL."""
    environment: str
    installation_id: str
    deployment_id: str | None = None
    received_ms: int


class GateInput(BaseModel):
    """Input of a `DeploymentGateWorkflow`; `wait` pinned from the policy when the event came
    (None: no rule releases the environment). `deadline_ms` is set when it continues as new."""

    event: DeploymentEvent
    wait: timedelta | None
    poll: timedelta
    deadline_ms: int | None = None


class GatedRequest(BaseModel):
    """A request the run opened that releases the deployment, as the ledger shows it."""

    id: str
    model: str
    version: str
    target: str
    state: RequestState
    reason: str | None = None
    approvers: list[str] = Field(default_factory=list)
    closing_comment: str | None = None
    """What the person who rejected or cancelled it wrote."""


class GateAnswer(BaseModel):
    """Input of `answer_deployment`: the one answer of a gate."""

    event: DeploymentEvent
    state: Literal["approved", "rejected"]
    comment: str


class GateAnswered(BaseModel):
    status_code: int
    attempts: int


class GateRecord(BaseModel):
    """Input of `record_gate`: the gate as it stands, for the ledger."""

    gate_id: str
    event: DeploymentEvent
    state: str
    comment: str | None = None
    request_ids: list[str] = Field(default_factory=list)
    status_code: int | None = None
    attempts: int = 0
    at_ms: int


# Break-glass reviews
# --------------------------------------------------------------------------------------------


class ReviewInput(BaseModel):
    """Everything a break-glass review needs, fixed when the move is made: the review rule
    (roles resolved, `policies.review_rule`) and the policy it comes from are pinned here."""

    review_id: str
    """The move's audit entry id (`breakglass-…`)."""
    model: str
    version: str
    from_stage: str
    to_stage: str
    mover: str
    comment: str | None = None
    review: BreakGlassReview
    policy: Policy
    policy_hash: str
    opened_ms: int

    @property
    def deadline_ms(self) -> int:
        return self.opened_ms + int(self.review.within.total_seconds() * 1000)

    def opening_review(self, workflow_id: str) -> ReviewRecord:
        return ReviewRecord(
            id=self.review_id,
            workflow_id=workflow_id,
            model=self.model,
            version=self.version,
            from_stage=self.from_stage,
            to_stage=self.to_stage,
            mover=self.mover,
            comment=self.comment,
            roles=list(self.review.roles),
            quorum=self.review.quorum,
            state=ReviewState.OPEN,
            policy_hash=self.policy_hash,
            opened_ms=self.opened_ms,
            deadline_ms=self.deadline_ms,
        )


DecisionResult.model_rebuild()
