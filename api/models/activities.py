"""Databricks' `Activity`: one audit entry on the wire (`AuditEntry` in our own code)."""

from __future__ import annotations

from pydantic import BaseModel, Field

from api.models.common import omitted
from workflows.domain import AuditEntry, AuditType, RequestState
from workflows.messages import DecisionResult


class Activity(BaseModel):
    """An audit entry as Databricks serves it; unset fields are omitted, not null."""

    id: str
    activity_type: AuditType
    creation_timestamp: int = Field(description="Epoch milliseconds.")
    last_updated_timestamp: int = Field(description="Epoch milliseconds.")
    from_stage: str | None = omitted()
    to_stage: str | None = omitted()
    user_id: str | None = omitted()
    comment: str | None = omitted()
    system_comment: str | None = omitted("What Signoff itself says about the entry.")
    request_id: str | None = omitted("The transition request the entry belongs to (Signoff).")
    roles: list[str] | None = omitted(
        "For a decision: the roles in which it was made, as its maker held them (Signoff)."
    )

    @classmethod
    def of(cls, entry: AuditEntry) -> Activity:
        return cls(
            id=entry.id,
            activity_type=entry.activity_type,
            creation_timestamp=entry.creation_timestamp,
            last_updated_timestamp=entry.creation_timestamp,
            from_stage=entry.from_stage,
            to_stage=entry.to_stage,
            user_id=entry.user_id,
            comment=entry.comment,
            system_comment=entry.system_comment,
            request_id=entry.request_id,
            roles=entry.roles or None,
        )


class RequestOutcome(BaseModel):
    """Where a request stands once a decision on it took effect (Signoff's addition)."""

    id: str
    state: RequestState
    reason: str | None = Field(
        None, description="Why it ended so, or why the transition is not applied yet."
    )
    approvals: int = Field(description="Approvals so far.")
    quorum: int = Field(description="Approvals the request needs.")
    apply_at: int | None = omitted(
        "While SCHEDULED: when the change window opens and it applies (ms); absent otherwise."
    )


class DecisionResponse(BaseModel):
    """Databricks' `{"activity": ...}` for a decision, with the request's `state` beside it,
    so the caller can tell "1 of 2" from "applied" from "MLflow is unreachable"."""

    activity: Activity
    request: RequestOutcome

    @classmethod
    def of(cls, result: DecisionResult) -> DecisionResponse:
        entry = result.entry
        return cls(
            activity=Activity.of(entry),
            request=RequestOutcome(
                id=entry.request_id,
                state=result.state,
                reason=result.reason,
                approvals=result.approvals,
                quorum=result.quorum,
                apply_at=result.apply_at_ms,
            ),
        )


class ActivityList(BaseModel):
    """The audit trail of one model version, oldest first."""

    activities: list[Activity]
