"""DeploymentGateWorkflow: one GitHub deployment waiting on Signoff, answered once.

One workflow per (repository, run, environment), id `github-deployment/<repository id>/<run
id>/<environment>`, started by the API when GitHub's `deployment_protection_rule` event
arrives. It looks for the requests the run opened that release the environment; while there
are none it keeps looking until the policy's `wait` has passed (then rejects, saying what to
do); once there are, it waits for their decision; then it answers GitHub, once, and records the
answer.

How it learns the decision: it reads the ledger on a durable timer (`SIGNOFF_GITHUB_GATE_POLL_S`)
rather than being signalled by the TransitionWorkflow. The ledger is the record every request
reaches (whatever decided it: a person, a check, the expiry timer, a superseding move), so the
gate needs nothing from the TransitionWorkflow, no change to its histories, and works the same
for a request decided long before the event came, after worker restarts, and for requests of
older workflow versions. Timers and activities keep it deterministic; it continues as new
before its history grows large. The cost is up to one poll interval of latency, small next to
a deployment job's own start-up.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.client import Client
from temporalio.common import RetryPolicy, WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from workflows.deployments.activities import GateActivities
    from workflows.deployments.verdict import Verdict, no_request, no_rule, verdict
    from workflows.errors import GITHUB_REFUSED, cause_message
    from workflows.messages import DeploymentEvent, GateAnswer, GatedRequest, GateInput, GateRecord

WAITING, APPROVED, REJECTED, FAILED = "WAITING", "APPROVED", "REJECTED", "FAILED"
MAX_POLLS_PER_RUN = 500
"""Then the workflow continues as new: its history stays a few thousand events long."""
ANSWER_WINDOW = timedelta(hours=24)
"""How long the answer is retried while GitHub is unreachable or failing."""

_LEDGER_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1), maximum_interval=timedelta(seconds=30)
)
_ANSWER_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    maximum_interval=timedelta(minutes=1),
    non_retryable_error_types=[GITHUB_REFUSED],
)


def gate_workflow_id(event: DeploymentEvent) -> str:
    return f"github-deployment/{event.repository_id}/{event.run_id}/{event.environment}"


def _now_ms() -> int:
    return int(workflow.now().timestamp() * 1000)


@workflow.defn
class DeploymentGateWorkflow:
    @workflow.run
    async def run(self, inp: GateInput) -> str:
        """The state the gate ended in: APPROVED, REJECTED, or FAILED (GitHub refused it)."""
        event = inp.event
        deadline_ms = inp.deadline_ms
        if deadline_ms is None:
            await self._record(inp, WAITING)
            if inp.wait is None:
                return await self._answer(inp, ("rejected", no_rule(event)), [])
            deadline_ms = _now_ms() + int(inp.wait.total_seconds() * 1000)
        for _ in range(MAX_POLLS_PER_RUN):
            requests = await workflow.execute_activity_method(
                GateActivities.find_gated_requests,
                event,
                start_to_close_timeout=timedelta(seconds=30),
                retry_policy=_LEDGER_RETRY,
            )
            answer = verdict(requests)
            if answer is not None:
                return await self._answer(inp, answer, requests)
            delay = inp.poll
            if not requests:
                left_ms = deadline_ms - _now_ms()
                if left_ms <= 0:
                    assert inp.wait is not None  # a deadline comes from a wait
                    return await self._answer(inp, ("rejected", no_request(event, inp.wait)), [])
                delay = min(delay, timedelta(milliseconds=left_ms))
            await workflow.sleep(delay)
            if workflow.info().is_continue_as_new_suggested():
                break
        workflow.continue_as_new(inp.model_copy(update={"deadline_ms": deadline_ms}))

    async def _answer(self, inp: GateInput, answer: Verdict, requests: list[GatedRequest]) -> str:
        state, comment = answer
        ids = [request.id for request in requests]
        try:
            answered = await workflow.execute_activity_method(
                GateActivities.answer_deployment,
                GateAnswer(event=inp.event, state=state, comment=comment),
                start_to_close_timeout=timedelta(seconds=60),
                schedule_to_close_timeout=ANSWER_WINDOW,
                retry_policy=_ANSWER_RETRY,
            )
        except ActivityError as err:
            reason = f"the answer ({state}: {comment}) could not be given: {cause_message(err)}"
            await self._record(inp, FAILED, comment=reason, request_ids=ids)
            return FAILED
        final = APPROVED if state == "approved" else REJECTED
        await self._record(
            inp,
            final,
            comment=comment,
            request_ids=ids,
            status_code=answered.status_code,
            attempts=answered.attempts,
        )
        return final

    async def _record(
        self,
        inp: GateInput,
        state: str,
        *,
        comment: str | None = None,
        request_ids: list[str] | None = None,
        status_code: int | None = None,
        attempts: int = 0,
    ) -> None:
        await workflow.execute_activity_method(
            GateActivities.record_gate,
            GateRecord(
                gate_id=workflow.info().workflow_id,
                event=inp.event,
                state=state,
                comment=comment,
                request_ids=request_ids or [],
                status_code=status_code,
                attempts=attempts,
                at_ms=_now_ms(),
            ),
            start_to_close_timeout=timedelta(seconds=30),
            retry_policy=_LEDGER_RETRY,
        )


async def start_gate(client: Client, task_queue: str, inp: GateInput) -> str:
    """Start the gate of the event's (run, environment); a gate already waiting for them takes
    the event instead (one answer each), and a new one starts once an earlier gate has answered
    (a re-run of the job, which GitHub gates afresh). Answers the gate's workflow id."""
    gate_id = gate_workflow_id(inp.event)
    await client.start_workflow(
        DeploymentGateWorkflow.run,
        inp,
        id=gate_id,
        task_queue=task_queue,
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
    )
    return gate_id
