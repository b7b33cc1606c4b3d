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
    github: GithubRun | None = None
    """The GitHub Actions run whose OIDC token opened the request (its verified claims)."""
    github_gate: GithubGate | None = None
    """The `github:` section of the request's rule: which deployments of that run it releases."""
