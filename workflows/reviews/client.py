"""How the API talks to break-glass reviews in Temporal: start one for a move, acknowledge
one. Refusals come back as `workflows.client.DecisionRefused`, a review whose workflow is
gone as `NoOpenRequest`, Temporal trouble as `TemporalUnavailable`."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

from temporalio.client import Client, WorkflowUpdateFailedError
from temporalio.common import WorkflowIDReusePolicy
from temporalio.exceptions import ApplicationError, WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from workflows.client import DecisionRefused, NoOpenRequest, decision_update_id, temporal_call
from workflows.domain import BreakGlassReview
from workflows.errors import NOT_OPEN, REFUSED
from workflows.messages import Decision, ReviewInput
from workflows.reviews.workflow import BreakGlassReviewWorkflow, review_workflow_id


@dataclass
class Reviews:
    client: Client
    task_queue: str

    async def start(self, inp: ReviewInput) -> BreakGlassReview:
        """Start the review of a move (once: a second start for the same move does nothing)."""
        workflow_id = review_workflow_id(inp.review_id)
        with contextlib.suppress(WorkflowAlreadyStartedError):
            async with temporal_call("opening the break-glass review"):
                await self.client.start_workflow(
                    BreakGlassReviewWorkflow.run,
                    inp,
                    id=workflow_id,
                    task_queue=self.task_queue,
                    id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
                )
        return inp.opening_review(workflow_id)

    async def acknowledge(self, review: BreakGlassReview, decision: Decision) -> BreakGlassReview:
        """Acknowledge the review as `decision.principal`; the review as it stands after."""
        handle = self.client.get_workflow_handle_for(
            BreakGlassReviewWorkflow.run, review.workflow_id
        )
        try:
            async with temporal_call("sending the acknowledgement; is a Signoff worker running?"):
                return await handle.execute_update(
                    BreakGlassReviewWorkflow.acknowledge,
                    decision,
                    id=decision_update_id("acknowledge", decision),
                )
        except WorkflowUpdateFailedError as err:
            cause = err.cause
            if isinstance(cause, ApplicationError) and cause.type in (REFUSED, NOT_OPEN):
                raise DecisionRefused(cause.message, not_open=cause.type == NOT_OPEN) from err
            raise
        except RPCError as err:
            if err.status == RPCStatusCode.NOT_FOUND:
                raise NoOpenRequest() from err
            raise
