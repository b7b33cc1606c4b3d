"""Values that cross the Temporal boundary (workflow inputs, update arguments, activity I/O).

They are pydantic models because the pinned policy is one; the client and worker both use
`temporalio.contrib.pydantic.pydantic_data_converter`. Keep them small: everything here lands
in workflow history.
"""

from __future__ import annotations

import hashlib
from enum import StrEnum
from typing import Annotated, Any

from pydantic import BaseModel, Field

from policies import (
    Check,
    GithubActionsCheck,
    JenkinsCheck,
    Policy,
    Principal,
    TransitionRule,
)
from workflows.ci.base import CiRunRef


class RequestState(StrEnum):
    PENDING = "PENDING"
    APPLYING = "APPLYING"
    APPLIED = "APPLIED"
    REJECTED = "REJECTED"
    CANCELLED = "CANCELLED"
    EXPIRED = "EXPIRED"
    FAILED_VALIDATION = "FAILED_VALIDATION"
    FAILED = "FAILED"

    @property
    def is_open(self) -> bool:
        return self in (RequestState.PENDING, RequestState.APPLYING)


class ActivityType(StrEnum):
    """Databricks' activity types, the vocabulary of the audit log."""

    REQUESTED_TRANSITION = "REQUESTED_TRANSITION"
    APPROVED_REQUEST = "APPROVED_REQUEST"
    REJECTED_REQUEST = "REJECTED_REQUEST"
    CANCELLED_REQUEST = "CANCELLED_REQUEST"
    APPLIED_TRANSITION = "APPLIED_TRANSITION"
    SYSTEM_TRANSITION = "SYSTEM_TRANSITION"
    NEW_COMMENT = "NEW_COMMENT"


class CheckStatus(StrEnum):
    RUNNING = "RUNNING"
    PASSED = "PASSED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"
    """The request was decided (rejected, expired, another check failed) before it finished."""


class CheckResult(BaseModel):
    check_id: str
    type: str
    status: CheckStatus
    summary: str = ""
    evidence: dict[str, Any] = Field(default_factory=dict)
    finished_ms: int | None = None


class Approval(BaseModel):
    user_id: str
    creation_timestamp: int
    comment: str | None = None


class ActivityEntry(BaseModel):
    """One line of the audit log. `id` is `<request id>-<seq>`: the idempotency key."""

    id: str
    request_id: str
    seq: int
    model: str
    version: str
    activity_type: ActivityType
    user_id: str
    from_stage: str | None = None
    to_stage: str | None = None
    comment: str | None = None
    system_comment: str | None = None
    creation_timestamp: int


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


class Decision(BaseModel):
    """Argument of the approve / reject / cancel updates. The principal comes from a verified
    token: the API authenticated it before calling the workflow."""

    principal: Principal
    comment: str | None = None


class RequestSnapshot(BaseModel):
    """The projection of a request that the ledger stores and the API serves."""

    id: str
    workflow_id: str
    run_id: str | None = None
    model: str
    version: str
    target: str
    from_stage: str | None = None
    requester: str
    comment: str | None = None
    state: RequestState
    reason: str | None = None
    policy_hash: str
    quorum: int = 0
    checks: list[CheckResult] = Field(default_factory=list)
    approvals: list[Approval] = Field(default_factory=list)
    revision: int = 0
    created_ms: int
    updated_ms: int

    @classmethod
    def opening(cls, inp: TransitionInput, workflow_id: str, run_id: str | None) -> RequestSnapshot:
        """The request as it stands the moment its workflow starts."""
        return cls(
            id=inp.request_id,
            workflow_id=workflow_id,
            run_id=run_id,
            model=inp.model,
            version=inp.version,
            target=inp.target,
            from_stage=inp.from_stage,
            requester=inp.requester.sub,
            comment=inp.comment,
            state=RequestState.PENDING,
            policy_hash=inp.policy_hash,
            quorum=inp.rule.approvals.quorum,
            checks=[
                CheckResult(check_id=check.check_id, type=check.type, status=CheckStatus.RUNNING)
                for check in inp.rule.checks
            ],
            created_ms=inp.created_ms,
            updated_ms=inp.created_ms,
        )


class LedgerUpdate(BaseModel):
    snapshot: RequestSnapshot
    activities: list[ActivityEntry] = Field(default_factory=list)


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


class ApplyOutcome(BaseModel):
    """`already_applied` is set when a retried attempt finds its own earlier work done."""

    from_stage: str
    to_stage: str
    already_applied: bool = False
    archived_versions: list[str] = Field(default_factory=list)


# --------------------------------------------------------------------------------------------
# CI checks (github_actions, jenkins): dispatch, poll, callback
# --------------------------------------------------------------------------------------------

CiCheck = Annotated[GithubActionsCheck | JenkinsCheck, Field(discriminator="type")]

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
