"""The request as its TransitionWorkflow holds it: state, approvals, check results and audit
entries. Every change bumps the revision and is queued for the ledger; webhook events are
queued for the announcer. Both queues are `Outbox`es the workflow drains."""

from __future__ import annotations

from typing import Any

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from policies import quorum_met
    from workflows.domain import (
        Approval,
        ArtifactDigest,
        AuditEntry,
        AuditType,
        CheckResult,
        CheckStatus,
        RequestSnapshot,
        RequestState,
    )
    from workflows.messages import TransitionInput
    from workflows.transition.outbox import Outbox
    from workflows.webhooks.events import WebhookEvent


def workflow_ms() -> int:
    """Now on the workflow's clock, in epoch milliseconds."""
    return int(workflow.now().timestamp() * 1000)


class RequestRecord:
    def __init__(
        self,
        inp: TransitionInput,
        *,
        ledger: Outbox[AuditEntry],
        announcer: Outbox[WebhookEvent],
    ) -> None:
        self.inp = inp
        self.state = RequestState.PENDING
        self.reason: str | None = None
        self.approvals: list[Approval] = []
        opening = inp.opening_snapshot("", None)
        self.checks: dict[str, CheckResult] = {c.check_id: c for c in opening.checks}
        self._seq = 0
        self._revision = 0
        self._updated_ms = inp.created_ms
        self._ledger = ledger
        self._announcer = announcer
        self.digest: ArtifactDigest | None = None
        self.awaiting_digest = False
        """Set while the artifacts are being pinned: the move is not applied before."""
        self.apply_at_ms: int | None = None

    # -- where the request stands -----------------------------------------------------------

    def approvers(self) -> list[str]:
        return [approval.user_id for approval in self.approvals]

    def failed_checks(self) -> list[CheckResult]:
        return [c for c in self.checks.values() if c.status is CheckStatus.FAILED]

    def ready_to_apply(self) -> bool:
        return (
            self.state is RequestState.PENDING
            and all(check.status is CheckStatus.PASSED for check in self.checks.values())
            and quorum_met(self.inp.rule, self.approvers())
        )

    def decided(self) -> bool:
        """Closed, a check failed, or ready to apply: the request waits no longer."""
        return (
            self.state is not RequestState.PENDING
            or bool(self.failed_checks())
            or self.ready_to_apply()
        )

    def applying(self) -> bool:
        return self.state is RequestState.APPLYING or self.ready_to_apply()

    def snapshot(self) -> RequestSnapshot:
        info = workflow.info()
        return self.inp.opening_snapshot(info.workflow_id, info.run_id).model_copy(
            update={
                "state": self.state,
                "reason": self.reason,
                "checks": list(self.checks.values()),
                "approvals": list(self.approvals),
                "revision": self._revision,
                "updated_ms": self._updated_ms,
                "digest": self.digest,
                "apply_at_ms": self.apply_at_ms,
            }
        )

    # -- changes ----------------------------------------------------------------------------

    def log(
        self,
        audit_type: AuditType,
        user_id: str,
        *,
        comment: str | None = None,
        from_stage: str | None = None,
        system_comment: str | None = None,
        roles: list[str] | None = None,
    ) -> AuditEntry:
        """Add an audit entry to the request's log."""
        inp = self.inp
        self._seq += 1
        entry = AuditEntry(
            id=f"{inp.request_id}-{self._seq}",
            request_id=inp.request_id,
            seq=self._seq,
            model=inp.model,
            version=inp.version,
            activity_type=audit_type,
            user_id=user_id,
            from_stage=from_stage or inp.from_stage,
            to_stage=inp.target,
            comment=comment,
            system_comment=system_comment,
            creation_timestamp=workflow_ms(),
            roles=roles or [],
        )
        self._ledger.put([entry])
        self.touch()
        return entry

    def approve(self, sub: str, comment: str | None, roles: list[str]) -> None:
        self.approvals.append(
            Approval(user_id=sub, creation_timestamp=workflow_ms(), comment=comment, roles=roles)
        )

    def set_state(self, state: RequestState) -> None:
        self.state = state
        self.touch()

    def close(self, state: RequestState, reason: str | None) -> None:
        self.reason = reason
        self.apply_at_ms = None
        self.set_state(state)

    def pin(self, digest: ArtifactDigest) -> None:
        """The artifacts' digest, taken when the request opened: what approvals approve."""
        self.digest = digest
        self.awaiting_digest = False
        self.touch()

    def schedule(self, apply_at_ms: int, reason: str) -> None:
        """Approved, waiting for the change window: SCHEDULED until `apply_at_ms`."""
        self.apply_at_ms = apply_at_ms
        self.reason = reason
        self.set_state(RequestState.SCHEDULED)

    def rerun_checks(self, check_ids: list[str]) -> None:
        """Mark checks as running again (re-checked when a change window opens)."""
        for check_id in check_ids:
            self.checks[check_id] = self.checks[check_id].model_copy(
                update={
                    "status": CheckStatus.RUNNING,
                    "summary": "re-checking as the change window opens",
                    "finished_ms": None,
                }
            )
        self.touch()

    def record_check(self, result: CheckResult) -> None:
        """A check's result (final, or running with new evidence); a failure is announced."""
        self.checks[result.check_id] = result
        self.touch()
        if result.status is CheckStatus.FAILED:
            self.announce_one(
                "VALIDATION_CHECK_FAILED",
                f"{self.inp.request_id}/check/{result.check_id}",
                text=f"{result.check_id} ({result.type}): {result.summary}",
            )

    def show_progress(self, check_id: str, summary: str, evidence: dict[str, Any]) -> None:
        """A running check's state (a CI job's URL once known), when it changes."""
        current = self.checks[check_id]
        evidence = {key: value for key, value in evidence.items() if value is not None}
        if (current.summary, current.evidence) != (summary, evidence):
            self.checks[check_id] = current.model_copy(
                update={"summary": summary, "evidence": evidence}
            )
            self.touch()

    def cancel_running_checks(self) -> None:
        for check_id, result in self.checks.items():
            if result.status is CheckStatus.RUNNING:
                self.checks[check_id] = result.model_copy(
                    update={"status": CheckStatus.CANCELLED, "summary": "the request was decided"}
                )
                self.touch()

    def touch(self) -> None:
        self._revision += 1
        self._updated_ms = workflow_ms()
        self._ledger.changed()

    def rollback_note(self) -> str | None:
        """What the record says of a governed rollback; None for any other request."""
        mark = self.inp.rollback
        if mark is None:
            return None
        replaced = f", replacing version {mark.replaces_version}" if mark.replaces_version else ""
        since = (
            f" (it held it before request {mark.previous_request})" if mark.previous_request else ""
        )
        return (
            f"Rollback: moves {self.inp.target} of {self.inp.model} back to version "
            f"{self.inp.version}{replaced}{since}"
        )

    # -- webhook events ---------------------------------------------------------------------

    def event_fields(self, from_stage: str | None = None) -> dict[str, Any]:
        inp = self.inp
        return {
            "model": inp.model,
            "version": inp.version,
            "to_stage": inp.target,
            "from_stage": from_stage or inp.from_stage,
            "request_id": inp.request_id,
            "event_timestamp": workflow_ms(),
        } | ({"rollback": True} if inp.rollback else {})

    def announce_one(self, event: str, event_id: str, **fields: Any) -> None:
        base = self.event_fields()
        model, version = base.pop("model"), base.pop("version")
        self.announce(
            [
                WebhookEvent(
                    event_id=event_id,
                    event=event,
                    model_name=model,
                    version=version,
                    **(base | fields),
                )
            ]
        )

    def announce(self, events: list[WebhookEvent]) -> None:
        self._announcer.put(events)
