"""Break-glass reviews (the projection of each BreakGlassReviewWorkflow) and the policies
requests pinned, by hash.

A review is written by the API when the move is made (so it is listed at once) and then by its
workflow's activities, which run at least once: a row is only overwritten by a snapshot with a
higher `revision`, so a retried or late write never undoes a newer one.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import update as sql_update
from sqlmodel import Session, col, select

from workflows.domain import Acknowledgement, BreakGlassReview, ReviewState
from workflows.ledger.engine import Database
from workflows.ledger.tables import BreakGlassReviewRow, PinnedPolicyRow

OPEN_REVIEW_STATES = [ReviewState.OPEN.value, ReviewState.OVERDUE.value]


class ReviewRepository:
    """`ledger.reviews`: break-glass reviews."""

    def __init__(self, database: Database) -> None:
        self._db = database

    async def record(self, review: BreakGlassReview) -> None:
        """Store the review unless an equal or newer revision is stored."""

        def work(session: Session) -> None:
            row = session.get(BreakGlassReviewRow, review.id)
            if row is None:
                session.add(_row(review))
            elif review.revision > row.revision:
                session.exec(
                    sql_update(BreakGlassReviewRow)
                    .where(
                        col(BreakGlassReviewRow.id) == review.id,
                        col(BreakGlassReviewRow.revision) < review.revision,
                    )
                    .values(_row(review).model_dump(exclude={"id"}))
                    .execution_options(synchronize_session=False)
                )

        await self._db.run(work, attempts=2)

    async def get(self, review_id: str) -> BreakGlassReview | None:
        def work(session: Session) -> BreakGlassReview | None:
            row = session.get(BreakGlassReviewRow, review_id)
            return _review(row) if row else None

        return await self._db.run(work)

    async def search(
        self,
        *,
        open_only: bool = False,
        overdue_only: bool = False,
        model: str | None = None,
        version: str | None = None,
        limit: int = 100,
    ) -> list[BreakGlassReview]:
        """Reviews, oldest deadline first (the most pressing on top)."""
        query = select(BreakGlassReviewRow)
        if overdue_only:
            query = query.where(BreakGlassReviewRow.state == ReviewState.OVERDUE.value)
        elif open_only:
            query = query.where(col(BreakGlassReviewRow.state).in_(OPEN_REVIEW_STATES))
        if model is not None:
            query = query.where(BreakGlassReviewRow.model_name == model)
        if version is not None:
            query = query.where(BreakGlassReviewRow.version == version)
        query = query.order_by(
            col(BreakGlassReviewRow.deadline_ms), col(BreakGlassReviewRow.id)
        ).limit(limit)
        return await self._db.run(lambda session: [_review(r) for r in session.exec(query)])


class PinnedPolicyRepository:
    """`ledger.policies`: policy documents by hash, written once."""

    def __init__(self, database: Database) -> None:
        self._db = database

    async def remember(self, policy_hash: str, document: dict[str, Any], now_ms: int) -> None:
        def work(session: Session) -> None:
            if session.get(PinnedPolicyRow, policy_hash) is None:
                session.add(
                    PinnedPolicyRow(hash=policy_hash, document=document, first_seen_ms=now_ms)
                )

        await self._db.run(work, attempts=2)

    async def get(self, policy_hash: str) -> dict[str, Any] | None:
        """The document whose hash is `policy_hash`, as stored (the caller validates it)."""

        def work(session: Session) -> dict[str, Any] | None:
            row = session.get(PinnedPolicyRow, policy_hash)
            return dict(row.document) if row else None

        return await self._db.run(work)


def _row(review: BreakGlassReview) -> BreakGlassReviewRow:
    return BreakGlassReviewRow(
        id=review.id,
        workflow_id=review.workflow_id,
        model_name=review.model,
        version=review.version,
        from_stage=review.from_stage,
        to_stage=review.to_stage,
        mover=review.mover,
        comment=review.comment,
        roles=list(review.roles),
        quorum=review.quorum,
        state=review.state.value,
        policy_hash=review.policy_hash,
        opened_ms=review.opened_ms,
        deadline_ms=review.deadline_ms,
        overdue_ms=review.overdue_ms,
        acknowledged_ms=review.acknowledged_ms,
        acknowledgements=[a.model_dump(mode="json") for a in review.acknowledgements],
        revision=review.revision,
    )


def _review(row: BreakGlassReviewRow) -> BreakGlassReview:
    return BreakGlassReview(
        id=row.id,
        workflow_id=row.workflow_id,
        model=row.model_name,
        version=row.version,
        from_stage=row.from_stage,
        to_stage=row.to_stage,
        mover=row.mover,
        comment=row.comment,
        roles=list(row.roles or []),
        quorum=row.quorum,
        state=ReviewState(row.state),
        policy_hash=row.policy_hash,
        opened_ms=row.opened_ms,
        deadline_ms=row.deadline_ms,
        overdue_ms=row.overdue_ms,
        acknowledged_ms=row.acknowledged_ms,
        acknowledgements=[Acknowledgement.model_validate(a) for a in row.acknowledgements or []],
        revision=row.revision,
    )
