"""Databricks' `Activity`: one audit entry on the wire (`AuditEntry` in our own code)."""

from __future__ import annotations

from pydantic import BaseModel, Field

from api.models.common import omitted
from workflows.domain import AuditEntry, AuditType


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
        )


class ActivityResponse(BaseModel):
    """`{"activity": ...}`: the entry a decision (approve, reject, cancel) recorded."""

    activity: Activity


class ActivityList(BaseModel):
    """The audit trail of one model version, oldest first."""

    activities: list[Activity]
