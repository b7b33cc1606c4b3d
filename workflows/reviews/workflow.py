"""BreakGlassReviewWorkflow: the after-the-fact review of one break-glass move.

Opened by the API right after the move (workflow id `break-glass-review/<move's entry id>`),
it records and announces the review, then waits for the quorum of acknowledgements (Updates,
each checked by the pinned policy in its validator: a reviewer role, not the person who broke
the glass, once each). If the deadline passes first, on Temporal's timer, the review turns
OVERDUE, recorded and announced; it can still be acknowledged after that, and the record keeps
that it was late.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from policies import review_refusal, reviewer_roles
    from policies.wording import describe_duration
    from workflows.activities.reviews import ReviewActivities
    from workflows.domain import Acknowledgement, BreakGlassReview, ReviewState
    from workflows.errors import not_open, refused
    from workflows.messages import Decision, ReviewInput
    from workflows.transition.record import workflow_ms
    from workflows.webhooks.events import AnnounceActivities, WebhookEvent

_RETRY = RetryPolicy(initial_interval=timedelta(seconds=1), maximum_interval=timedelta(minutes=1))


def review_workflow_id(review_id: str) -> str:
    return f"break-glass-review/{review_id}"


@workflow.defn
class BreakGlassReviewWorkflow:
    @workflow.init
    def __init__(self, inp: ReviewInput) -> None:
        self._inp = inp
        self._review = inp.opening_review(workflow.info().workflow_id)

    @workflow.run
    async def run(self, inp: ReviewInput) -> BreakGlassReview:
        await self._record()
        await self._announce(
            "BREAK_GLASS_REVIEW_OPENED",
            f"Break-glass move by {inp.mover} of version {inp.version} of {inp.model} "
            f"({inp.from_stage} → {inp.to_stage}) needs review by {self._who()} within "
            f"{describe_duration(inp.review.within)}",
        )
        remaining = timedelta(milliseconds=inp.deadline_ms - workflow_ms())
        try:
            if remaining <= timedelta(0):
                raise TimeoutError
            await workflow.wait_condition(self._acknowledged, timeout=remaining)
        except TimeoutError:
            await self._overdue()
            await workflow.wait_condition(self._acknowledged)
        await workflow.wait_condition(workflow.all_handlers_finished)
        return self._review

    def _acknowledged(self) -> bool:
        return self._review.state is ReviewState.ACKNOWLEDGED

    def _who(self) -> str:
        review = self._inp.review
        return f"{review.quorum} of {', '.join(review.roles) or 'nobody'}"

    async def _overdue(self) -> None:
        review = self._review
        review.state = ReviewState.OVERDUE
        review.overdue_ms = workflow_ms()
        review.revision += 1
        await self._record()
        await self._announce(
            "BREAK_GLASS_REVIEW_OVERDUE",
            f"The review of the break-glass move by {review.mover} of version "
            f"{review.version} of {review.model} to {review.to_stage} is overdue: "
            f"{len(review.acknowledgements)} of {review.quorum} acknowledgement(s) from "
            f"{', '.join(review.roles)} after {describe_duration(self._inp.review.within)}",
        )

    # -- acknowledgements -----------------------------------------------------------------

    @workflow.update
    async def acknowledge(self, decision: Decision) -> BreakGlassReview:
        review = self._review
        review.acknowledgements.append(
            Acknowledgement(
                user_id=decision.principal.sub,
                roles=reviewer_roles(decision.principal, self._inp.review),
                comment=decision.comment,
                creation_timestamp=workflow_ms(),
            )
        )
        done = len({a.user_id for a in review.acknowledgements}) >= review.quorum
        if done:
            review.state = ReviewState.ACKNOWLEDGED
            review.acknowledged_ms = workflow_ms()
        review.revision += 1
        answer = review.model_copy(deep=True)
        await self._record()
        if done:
            late = " (after its deadline)" if review.overdue_ms is not None else ""
            who = ", ".join(a.user_id for a in review.acknowledgements)
            await self._announce(
                "BREAK_GLASS_REVIEWED",
                f"The break-glass move by {review.mover} of version {review.version} of "
                f"{review.model} to {review.to_stage} was reviewed by {who}{late}",
            )
        return answer

    @acknowledge.validator
    def _validate_acknowledge(self, decision: Decision) -> None:
        review = self._review
        if not review.state.is_open:
            raise not_open(f"the review of {review.id} is already acknowledged")
        reason = review_refusal(
            self._inp.policy,
            self._inp.review,
            model=review.model,
            mover=review.mover,
            acknowledgers=[a.user_id for a in review.acknowledgements],
            principal=decision.principal,
        )
        if reason is not None:
            raise refused(reason)

    @workflow.query
    def snapshot(self) -> BreakGlassReview:
        return self._review

    # -- I/O ----------------------------------------------------------------------------

    async def _record(self) -> None:
        await workflow.execute_activity_method(
            ReviewActivities.record_review,
            self._review.model_copy(deep=True),
            start_to_close_timeout=timedelta(seconds=30),
            retry_policy=_RETRY,
        )

    async def _announce(self, event: str, text: str) -> None:
        review = self._review
        await workflow.execute_activity_method(
            AnnounceActivities.announce_webhooks,
            [
                WebhookEvent(
                    event_id=f"{review.id}/{event}",
                    event=event,
                    model_name=review.model,
                    version=review.version,
                    from_stage=review.from_stage,
                    to_stage=review.to_stage,
                    comment=review.comment,
                    text=text,
                    review_id=review.id,
                    event_timestamp=workflow_ms(),
                )
            ],
            start_to_close_timeout=timedelta(seconds=30),
            retry_policy=_RETRY,
        )
