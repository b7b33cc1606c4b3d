"""The `record_review` activity: a break-glass review's state copied to the ledger (written
by revision, so a retry or a late attempt never undoes a newer write)."""

from __future__ import annotations

from temporalio import activity

from workflows.domain import BreakGlassReview
from workflows.ledger import Ledger


class ReviewActivities:
    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger

    @activity.defn
    async def record_review(self, review: BreakGlassReview) -> None:
        await self.ledger.reviews.record(review)
