"""The gate workflow's activities: read the ledger for the run's requests, record the gate,
answer GitHub as the App. Each is safe to run twice (the answer: see `callback.send_answer`)."""

from __future__ import annotations

from temporalio import activity
from temporalio.exceptions import ApplicationError

from policies import gate_applies
from workflows.deployments.app_auth import GithubAppAuth
from workflows.deployments.callback import send_answer
from workflows.domain import AuditType, RequestSnapshot
from workflows.errors import GITHUB_REFUSED
from workflows.ledger import DeploymentGate, Ledger
from workflows.messages import DeploymentEvent, GateAnswer, GateAnswered, GatedRequest, GateRecord

_CLOSING = {AuditType.REJECTED_REQUEST, AuditType.CANCELLED_REQUEST}


class GateActivities:
    """`auth` is None when the worker has no App configured: answers then fail, saying so."""

    def __init__(self, ledger: Ledger, auth: GithubAppAuth | None) -> None:
        self.ledger = ledger
        self.auth = auth

    def defns(self) -> list[object]:
        return [self.find_gated_requests, self.record_gate, self.answer_deployment]

    @activity.defn
    async def find_gated_requests(self, event: DeploymentEvent) -> list[GatedRequest]:
        """The requests the event's run opened whose rule releases its environment."""
        found = await self.ledger.requests.of_github_run(event.repository_id, event.run_id)
        gated = [r for r in found if gate_applies(r.github_gate, event.environment)]
        return [await self._gated(request) for request in gated]

    async def _gated(self, request: RequestSnapshot) -> GatedRequest:
        closing = None
        if not request.state.is_open:
            trail = await self.ledger.requests.audit_trail(request.model, request.version)
            closing = next(
                (
                    entry.comment
                    for entry in reversed(trail)
                    if entry.request_id == request.id and entry.activity_type in _CLOSING
                ),
                None,
            )
        return GatedRequest(
            id=request.id,
            model=request.model,
            version=request.version,
            target=request.target,
            state=request.state,
            reason=request.reason,
            approvers=[approval.user_id for approval in request.approvals],
            closing_comment=closing,
        )

    @activity.defn
    async def record_gate(self, record: GateRecord) -> None:
        event = record.event
        await self.ledger.deployment_gates.record(
            DeploymentGate(
                id=event.delivery_id,
                gate_id=record.gate_id,
                repository=event.repository,
                repository_id=event.repository_id,
                run_id=event.run_id,
                environment=event.environment,
                state=record.state,
                comment=record.comment,
                request_ids=record.request_ids,
                status_code=record.status_code,
                attempts=record.attempts,
                created_ms=event.received_ms,
                updated_ms=record.at_ms,
            )
        )

    @activity.defn
    async def answer_deployment(self, answer: GateAnswer) -> GateAnswered:
        if self.auth is None:
            raise ApplicationError(
                "this worker has no GitHub App: set SIGNOFF_GITHUB_APP_ID and "
                "SIGNOFF_GITHUB_APP_PRIVATE_KEY",
                type=GITHUB_REFUSED,
                non_retryable=True,
            )
        return await send_answer(self.auth, answer)
