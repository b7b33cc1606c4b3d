"""How the rest of Signoff talks to Temporal: one connection helper and the request
operations the API needs, so the API never builds workflow ids or reads update errors itself."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
from collections.abc import AsyncIterator
from dataclasses import dataclass

from temporalio.client import (
    Client,
    RPCTimeoutOrCancelledError,
    WorkflowExecutionStatus,
    WorkflowFailureError,
    WorkflowHandle,
    WorkflowUpdateFailedError,
    WorkflowUpdateRPCTimeoutOrCancelledError,
    WorkflowUpdateStage,
)
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.exceptions import (
    ApplicationError,
    CancelledError,
    TerminatedError,
    WorkflowAlreadyStartedError,
)
from temporalio.exceptions import TimeoutError as WorkflowTimeoutError
from temporalio.service import RPCError, RPCStatusCode

from workflows.domain import CheckResult, RequestSnapshot, RequestState, now_ms
from workflows.errors import INVALID_CALLBACK, NOT_OPEN, REFUSED
from workflows.logs import bind_workflow
from workflows.messages import CiCallback, Decision, DecisionResult, TransitionInput
from workflows.settings import WorkerSettings
from workflows.tracing import temporal_interceptors
from workflows.transition import APPLY_WAIT, TransitionWorkflow


async def connect(settings: WorkerSettings) -> Client:
    return await Client.connect(
        settings.temporal_address,
        namespace=settings.temporal_namespace,
        data_converter=pydantic_data_converter,
        interceptors=temporal_interceptors(),
    )


TEMPORAL_WAIT_S = 10.0
"""How long any call waits on Temporal (and on a worker, for what needs one) before the caller
is told it is unavailable: nothing a person waits on hangs."""
RESULT_WAIT_S = APPLY_WAIT.total_seconds() + 5
"""How long an accepted decision waits for its result (the completing approval itself waits up
to `APPLY_WAIT` for the transition to be applied)."""

CLOSING_WAIT_S = 10.0
"""How long a new request waits for the previous run for its target, decided but still
finishing (its ledger writes, its announcements), to end."""


def workflow_id_for(model: str, version: str, target: str) -> str:
    return f"transition/{model}/{version}/{target}"


class RequestAlreadyOpen(Exception):
    def __init__(self, open_request: RequestSnapshot) -> None:
        super().__init__(f"an open request {open_request.id} exists for this target")
        self.open_request = open_request


class NoOpenRequest(Exception):
    """No open request for that model version and target."""


class DecisionRefused(Exception):
    """The policy does not allow this principal this decision; `reason` says why."""

    def __init__(self, reason: str, *, not_open: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.not_open = not_open


class CallbackRefused(Exception):
    """The request does not take this CI callback; `reason` says why, `kind` how the API
    answers: `not_open` (the request or the check is not waiting), `invalid` (no such CI check)
    or `refused` (no valid callback token and no authenticated caller, or a token used before).
    """

    def __init__(self, reason: str, kind: str) -> None:
        super().__init__(reason)
        self.reason = reason
        self.kind = kind


class TemporalUnavailable(Exception):
    """Temporal cannot be reached, or did not answer within `TEMPORAL_WAIT_S` (`timed_out`).
    `str()` says what to do."""

    def __init__(self, message: str, *, timed_out: bool = False) -> None:
        super().__init__(message)
        self.timed_out = timed_out


class DecisionNotAccepted(Exception):
    """No worker accepted the decision in time (none is running, or all are busy): it is not
    recorded yet. Temporal keeps it, so a worker that comes back may still apply it; the same
    call again attaches to it (a decision's update id is derived from the decision), never
    counts it twice, and says how it ended."""


class DecisionPending(Exception):
    """The decision is recorded (accepted by the request's workflow), but its outcome did not
    come back in time; the same call again reports it."""


def decision_update_id(action: str, decision: Decision) -> str:
    """The update id of a decision: the same for a retry of the same decision (the same
    action, person and comment), so Temporal attaches the retry to the first and answers it with
    the first one's result instead of running it twice. A second, different decision by the
    same person (another comment) is a new update, which the policy judges (and refuses, for a
    second approval)."""
    key = "\x1f".join((action, decision.principal.sub, decision.comment or ""))
    return f"{action}-{hashlib.sha256(key.encode()).hexdigest()[:32]}"


@contextlib.asynccontextmanager
async def temporal_call(what: str) -> AsyncIterator[None]:
    """Bound a call to Temporal (`TEMPORAL_WAIT_S`) and say plainly when Temporal is the
    problem: raises TemporalUnavailable. Every call that waits on Temporal goes through it."""
    try:
        async with asyncio.timeout(TEMPORAL_WAIT_S):
            yield
    except (TimeoutError, RPCTimeoutOrCancelledError) as err:
        raise TemporalUnavailable(
            f"Temporal did not answer within {TEMPORAL_WAIT_S:g} s ({what}); retry shortly",
            timed_out=True,
        ) from err
    except RPCError as err:
        if err.status in (RPCStatusCode.UNAVAILABLE, RPCStatusCode.DEADLINE_EXCEEDED):
            raise TemporalUnavailable(
                f"Temporal cannot be reached ({what}: {err.message}); retry shortly"
            ) from err
        raise


_CALLBACK_REFUSALS = {NOT_OPEN: "not_open", INVALID_CALLBACK: "invalid", REFUSED: "refused"}


def ended_without_decision(request: RequestSnapshot, how: str) -> RequestSnapshot:
    """The request whose workflow run is over without having decided it (`how`: "was
    terminated", "no longer exists in Temporal", ...): FAILED, with the reason, so nobody
    waits on it. The one wording of this, for the reconciler and for the API."""
    return request.model_copy(
        update={
            "state": RequestState.FAILED,
            "reason": f"its workflow {how} before the request was decided; nothing more will "
            "happen to it (request again; if it was being applied, check MLflow)",
            "revision": request.revision + 1,
            "updated_ms": now_ms(),
        }
    )


def how_it_ended(status: WorkflowExecutionStatus) -> str:
    """A closed run's status as `ended_without_decision` words it: "was terminated", ..."""
    return f"was {status.name.lower().replace('_', ' ')}"


def _status_of(failure: WorkflowFailureError) -> WorkflowExecutionStatus:
    cause = failure.cause
    if isinstance(cause, TerminatedError):
        return WorkflowExecutionStatus.TERMINATED
    if isinstance(cause, WorkflowTimeoutError):
        return WorkflowExecutionStatus.TIMED_OUT
    if isinstance(cause, CancelledError):
        return WorkflowExecutionStatus.CANCELED
    return WorkflowExecutionStatus.FAILED


@dataclass
class Transitions:
    client: Client
    task_queue: str

    async def start(self, inp: TransitionInput) -> RequestSnapshot:
        """Start a request's workflow; raises RequestAlreadyOpen with the open one."""
        workflow_id = workflow_id_for(inp.model, inp.version, inp.target)
        bind_workflow(workflow_id)  # the API call's log lines name the workflow it acts on
        for attempt in range(2):
            try:
                async with temporal_call("starting the request's workflow"):
                    handle = await self.client.start_workflow(
                        TransitionWorkflow.run,
                        inp,
                        id=workflow_id,
                        task_queue=self.task_queue,
                        id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
                        id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
                    )
                return inp.opening_snapshot(workflow_id, handle.result_run_id)
            except WorkflowAlreadyStartedError:
                current = await self.snapshot(inp.model, inp.version, inp.target)
                if current.state.is_open or attempt == 1:
                    raise RequestAlreadyOpen(current) from None
                # Decided a moment ago (rejected, cancelled, ...) and still writing its record:
                # let that run end, then start the new request.
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(
                        self.client.get_workflow_handle(workflow_id).result(), CLOSING_WAIT_S
                    )
        raise AssertionError("unreachable")  # pragma: no cover

    def _handle(self, model: str, version: str, target: str) -> WorkflowHandle:
        workflow_id = workflow_id_for(model, version, target)
        bind_workflow(workflow_id)
        return self.client.get_workflow_handle_for(TransitionWorkflow.run, workflow_id)

    async def snapshot(self, model: str, version: str, target: str) -> RequestSnapshot:
        try:
            async with temporal_call("asking the request's workflow; is a Signoff worker running?"):
                handle = self._handle(model, version, target)
                return await handle.query(TransitionWorkflow.snapshot)
        except RPCError as err:
            if err.status == RPCStatusCode.NOT_FOUND:
                raise NoOpenRequest() from err
            raise

    async def decide(
        self, action: str, model: str, version: str, target: str, decision: Decision
    ) -> DecisionResult:
        """Send `approve`, `reject` or `cancel` to the open request for that target, and say
        where the request stands after it. Bounded: DecisionNotAccepted when no worker took it
        within `TEMPORAL_WAIT_S`, DecisionPending when it was taken but its outcome is late;
        the same call again attaches to the same decision (its update id is derived)."""
        update = {
            "approve": TransitionWorkflow.approve,
            "reject": TransitionWorkflow.reject,
            "cancel": TransitionWorkflow.cancel,
        }[action]
        handle = self._handle(model, version, target)
        update_id = decision_update_id(action, decision)
        try:
            try:
                async with temporal_call("sending the decision"):
                    accepted = await handle.start_update(
                        update,
                        decision,
                        id=update_id,
                        wait_for_stage=WorkflowUpdateStage.ACCEPTED,
                    )
            except TemporalUnavailable as err:
                if not err.timed_out:
                    raise
                raise DecisionNotAccepted(
                    f"no Signoff worker took the decision within {TEMPORAL_WAIT_S:g} s (is one "
                    "running, and is Temporal up?), so it is not recorded yet; it may still take "
                    "effect when a worker runs. Send the same call again to learn the outcome "
                    "(it will not count twice)"
                ) from err
            try:
                async with asyncio.timeout(RESULT_WAIT_S):
                    return await accepted.result()
            except (TimeoutError, WorkflowUpdateRPCTimeoutOrCancelledError) as err:
                # Ours, or the SDK's own poll giving up first (a worker shutting down holds the
                # outcome back longer than the poll's RPC timeout): the decision stands.
                raise DecisionPending(
                    "the decision is recorded, but its outcome did not come back in time; send "
                    "the same call again to learn it (it will not count twice)"
                ) from err
        except WorkflowUpdateFailedError as err:
            cause = err.cause
            if isinstance(cause, ApplicationError) and cause.type in (REFUSED, NOT_OPEN):
                raise DecisionRefused(cause.message, not_open=cause.type == NOT_OPEN) from err
            raise
        except RPCError as err:
            if err.status == RPCStatusCode.NOT_FOUND:
                raise NoOpenRequest() from err
            raise

    async def ci_callback(
        self, workflow_id: str, run_id: str | None, callback: CiCallback
    ) -> CheckResult:
        """Deliver a CI job's report to the request's workflow run; returns the recorded
        result. Raises CallbackRefused, or NoOpenRequest when that run is over or unknown."""
        handle = self.client.get_workflow_handle_for(
            TransitionWorkflow.run, workflow_id, run_id=run_id
        )
        try:
            async with temporal_call("reporting to the request's workflow"):
                return await handle.execute_update(TransitionWorkflow.ci_callback, callback)
        except WorkflowUpdateFailedError as err:
            cause = err.cause
            if isinstance(cause, ApplicationError) and cause.type in _CALLBACK_REFUSALS:
                raise CallbackRefused(cause.message, _CALLBACK_REFUSALS[cause.type]) from err
            raise
        except RPCError as err:
            if err.status == RPCStatusCode.NOT_FOUND:
                raise NoOpenRequest() from err
            raise

    async def live_snapshot(self, request: RequestSnapshot) -> RequestSnapshot:
        """The workflow's current view of a request the ledger knows (fresher while open)."""
        handle = self.client.get_workflow_handle_for(
            TransitionWorkflow.run, request.workflow_id, run_id=request.run_id
        )
        async with temporal_call("asking the request's workflow; is a Signoff worker running?"):
            return await handle.query(TransitionWorkflow.snapshot)

    async def wait_closed(self, request: RequestSnapshot) -> RequestSnapshot:
        """The request once its workflow run is over: as the run decided it, or FAILED when
        the run ended without deciding it (terminated, timed out, failed outside Signoff)."""
        handle = self.client.get_workflow_handle_for(
            TransitionWorkflow.run, request.workflow_id, run_id=request.run_id
        )
        try:
            return await handle.result()
        except WorkflowFailureError as err:
            return ended_without_decision(request, how_it_ended(_status_of(err)))
