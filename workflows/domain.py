"""Signoff's shared vocabulary: what a request is, where it stands, and its audit entries.

These are the domain models every layer speaks (the workflow, the ledger, the API). Temporal's
messages (workflow inputs, update arguments, activity I/O) are in `workflows.messages`.
"""

from __future__ import annotations

import time
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, Field

from policies import GithubGate, GithubRun


def now_ms() -> int:
    """Wall-clock time in epoch milliseconds, the unit of every timestamp Signoff keeps. Not for
    workflow code, which reads `workflow.now()`."""
    return time.time_ns() // 1_000_000


class RequestState(StrEnum):
    PENDING = "PENDING"
    SCHEDULED = "SCHEDULED"
    """Approved outside the rule's change window (or in a freeze): applies when it opens."""
    APPLYING = "APPLYING"
    APPLIED = "APPLIED"
    REJECTED = "REJECTED"
    CANCELLED = "CANCELLED"
    EXPIRED = "EXPIRED"
    FAILED_VALIDATION = "FAILED_VALIDATION"
    FAILED = "FAILED"

    @property
    def is_open(self) -> bool:
        return self in (RequestState.PENDING, RequestState.SCHEDULED, RequestState.APPLYING)


class AuditType(StrEnum):
    """What an audit entry records; the values are Databricks' activity types, its wire names."""

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
    roles: list[str] = Field(default_factory=list)
    """The roles in which the approver approved, as they held them at that moment (those of
    theirs the rule accepts). Empty in approvals recorded before Signoff kept them."""


class AuditEntry(BaseModel):
    """One line of the audit log (Databricks calls it an activity). `id` is
    `<request id>-<seq>`: the idempotency key."""

    id: str
    request_id: str
    seq: int
    model: str
    version: str
    activity_type: AuditType
    user_id: str
    from_stage: str | None = None
    to_stage: str | None = None
    comment: str | None = None
    system_comment: str | None = None
    creation_timestamp: int
    roles: list[str] = Field(default_factory=list)
    """For a decision (approve, reject, cancel): the roles in which `user_id` made it, as they
    held them then. Empty otherwise, and in entries written before Signoff kept them."""


class ArtifactFile(BaseModel):
    """One file of a version's artifacts: its path (from the run's or the logged model's
    artifact root), size in bytes, and SHA-256 (None above the digest's size limit)."""

    path: str
    size: int
    sha256: str | None = None


class ArtifactDigest(BaseModel):
    """What a request approves: the version's source and run, and a manifest of its files,
    read through MLflow's artifact API when the request opened. `sha256` covers all of it
    (`workflows.artifacts.digest_of`), so two digests are the same approval iff it is equal."""

    source: str | None = None
    run_id: str | None = None
    sha256: str
    files: list[ArtifactFile] = Field(default_factory=list)
    file_count: int = 0
    total_bytes: int = 0
    max_file_mb: float
    listed: bool = True
    """False when the source's files cannot be listed through MLflow (not a run's or a logged
    model's artifacts): then only `source` and `run_id` are pinned."""
    note: str | None = None
    """What the digest leaves out, in words (files recorded by path and size only)."""
    computed_ms: int


class RollbackMark(BaseModel):
    """A request that moves its target back to the version that held it before."""

    replaces_version: str | None = None
    """The version at the target when the rollback was requested."""
    previous_request: str | None = None
    """The applied request (or break-glass entry) that had moved the restored version there."""


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
    approver_roles: list[str] | None = None
    """Roles in which someone may approve or reject it, from the pinned policy (the ledger
    indexes them for the inbox). None in snapshots made before Signoff computed them."""
    self_approval: bool = False
    """The pinned rule lets the requester approve their own request."""
    digest: ArtifactDigest | None = None
    tags: dict[str, str] = Field(default_factory=dict)
    """The version's tags (over its model's) that the policy's conditions read, pinned."""
    tier: dict[str, str] = Field(default_factory=dict)
    """The tags that met the applied rule's `when` (empty for a rule without one)."""
    apply_at_ms: int | None = None
    """While SCHEDULED: when the change window opens and the request applies."""
    rollback: RollbackMark | None = None
    github: GithubRun | None = None
    """The GitHub Actions run whose OIDC token opened the request (its verified claims)."""
    github_gate: GithubGate | None = None
    """The `github:` section of the request's rule: which deployments of that run it releases."""


class ReviewState(StrEnum):
    """Where a break-glass review stands. OVERDUE: its deadline passed unacknowledged (it can
    still be acknowledged; `overdue_ms` keeps that it was late)."""

    OPEN = "OPEN"
    OVERDUE = "OVERDUE"
    ACKNOWLEDGED = "ACKNOWLEDGED"

    @property
    def is_open(self) -> bool:
        return self is not ReviewState.ACKNOWLEDGED


class Acknowledgement(BaseModel):
    user_id: str
    roles: list[str] = Field(default_factory=list)
    """The reviewer roles in which they acknowledged, as they held them then."""
    comment: str | None = None
    creation_timestamp: int


class BreakGlassReview(BaseModel):
    """The after-the-fact review of one break-glass move (its id is the move's audit entry
    id, `breakglass-…`): who must acknowledge it, by when, and who did."""

    id: str
    workflow_id: str
    model: str
    version: str
    from_stage: str
    to_stage: str
    mover: str
    """Who broke the glass; they may not review it."""
    comment: str | None = None
    roles: list[str]
    quorum: int
    state: ReviewState
    policy_hash: str
    opened_ms: int
    deadline_ms: int
    overdue_ms: int | None = None
    acknowledged_ms: int | None = None
    acknowledgements: list[Acknowledgement] = Field(default_factory=list)
    revision: int = 0
