"""Break-glass reviews on the wire: `/api/2.0/signoff/break-glass/reviews/*`."""

from __future__ import annotations

from pydantic import BaseModel, Field

from api.models.common import Body, Comment
from workflows.domain import Acknowledgement, BreakGlassReview, ReviewState


class Review(BaseModel):
    """One break-glass move's review. `id` is the move's audit entry id (`breakglass-…`, the
    `id` of its `APPLIED_TRANSITION` activity). Timestamps are epoch milliseconds."""

    id: str
    name: str
    version: str
    from_stage: str
    to_stage: str
    mover: str = Field(description="Who broke the glass (may not review it).")
    comment: str | None
    roles: list[str] = Field(description="Roles that may acknowledge.")
    quorum: int
    state: ReviewState
    overdue: bool = Field(description="The deadline passed before the quorum (even if later met).")
    opened_timestamp: int
    deadline_timestamp: int
    overdue_timestamp: int | None
    acknowledged_timestamp: int | None
    acknowledgements: list[Acknowledgement]
    policy_hash: str
    may_acknowledge: bool = Field(description="Whether the caller may acknowledge it now.")
    why_not: str | None = Field(None, description="Why not, when they may not.")

    @classmethod
    def of(cls, review: BreakGlassReview, *, why_not: str | None) -> Review:
        return cls(
            id=review.id,
            name=review.model,
            version=review.version,
            from_stage=review.from_stage,
            to_stage=review.to_stage,
            mover=review.mover,
            comment=review.comment,
            roles=review.roles,
            quorum=review.quorum,
            state=review.state,
            overdue=review.overdue_ms is not None,
            opened_timestamp=review.opened_ms,
            deadline_timestamp=review.deadline_ms,
            overdue_timestamp=review.overdue_ms,
            acknowledged_timestamp=review.acknowledged_ms,
            acknowledgements=review.acknowledgements,
            policy_hash=review.policy_hash,
            may_acknowledge=why_not is None,
            why_not=why_not,
        )


class ReviewResponse(BaseModel):
    review: Review


class ReviewList(BaseModel):
    reviews: list[Review]


class AcknowledgeReview(Body):
    id: str = Field(min_length=1, max_length=128, pattern=r"^breakglass-[0-9a-f]+$")
    comment: Comment = None
