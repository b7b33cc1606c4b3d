"""TransitionWorkflow: one governed stage or alias transition, from request to record.

The request is opened; its validation checks run, each in a task of its own, while the
approvals arrive as workflow Updates (each checked by the pinned policy in its validator).
The request waits until it is decided: a check failed, it was rejected or cancelled, it
expired, or every check passed with the quorum met, when the version is re-read and moved in
MLflow once. Then the checks still running are cancelled and the record is finished.

Two outboxes copy what happens to the ledger and announce it to webhooks in the background,
so neither sits between the last approval and the applied transition (since
`ONE_OUTBOX_PATCH`, one outbox, in one activity per batch).
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, CancelledError

with workflow.unsafe.imports_passed_through():
    from policies import (
        CI_CHECK_TYPES,
        Check,
        acting_roles,
        approval_refusal,
        cancel_refusal,
        format_duration,
        is_alias,
        is_ci_check,
        rejection_refusal,
    )
    from workflows.activities.changes import ChangeActivities
    from workflows.activities.checks import CheckActivities
    from workflows.activities.outbox import LedgerActivities
    from workflows.activities.registry import RegistryActivities
    from workflows.domain import (
        AuditEntry,
        AuditType,
        CheckResult,
        CheckStatus,
        RequestSnapshot,
        RequestState,
    )
    from workflows.errors import (
        MLFLOW_REFUSED,
        STALE_REQUEST,
        cause_message,
        invalid_callback,
        not_open,
        refused,
    )
    from workflows.messages import (
        ApplyInput,
        ChangeUpdate,
        CheckInput,
        CiCallback,
        Decision,
        DecisionResult,
        LedgerUpdate,
        Superseded,
        SupersedeInput,
        TransitionInput,
    )
    from workflows.transition.ci_check import CiCheckRun
    from workflows.transition.outbox import Outbox
    from workflows.transition.pinning import ArtifactPin
    from workflows.transition.record import RequestRecord, workflow_ms
    from workflows.transition.schedule import ChangeWindowWait
    from workflows.webhooks.events import (
        AnnounceActivities,
        WebhookEvent,
        request_created_events,
        transition_events,
    )

SYSTEM_USER = "signoff"
WEBHOOK_EVENTS_PATCH = "announce-webhook-events"
"""Runs started before webhook events existed replay without the announcer."""
FAILURES_RECORDED_PATCH = "record-failures-and-close-superseded"
"""Runs started before it end FAILED without an audit entry or event, and close no other
request when they apply."""
ANSWER_APPLIED_PATCH = "answer-once-applied"
"""Runs started before it answer the completing approval once the ledger has the applied
transition too; since, once MLflow has it (the answer carries the record for the caller)."""
ONE_OUTBOX_PATCH = "one-activity-per-change"
"""Runs started since hand each state change on in one activity (`record_changes`: the
ledger, the webhook events and, for the applied move, the requests it supersedes) instead of
`record_ledger`, `announce_webhooks` and `close_superseded` each; and they have every patch
above and in `pinning` without recording those patches' markers (`_since`)."""
APPLY_WAIT = timedelta(seconds=10)
"""How long the approval that completes the quorum waits to report the applied transition
(in MLflow and in the ledger) before it answers anyway."""

_DECIDING = (RequestState.PENDING, RequestState.APPLYING)
"""While in these, the approval that completed the quorum waits to report the outcome."""

_LEDGER_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1), maximum_interval=timedelta(minutes=1)
)
_APPLY_RETRY = RetryPolicy(
    initial_interval=timedelta(milliseconds=500),
    maximum_interval=timedelta(minutes=1),
    non_retryable_error_types=[STALE_REQUEST, MLFLOW_REFUSED],
)
_CHECK_RETRY = RetryPolicy(
    # A short ceiling keeps retrying until close to the check's timeout: Temporal gives up
    # as soon as the next backoff would pass it.
    initial_interval=timedelta(seconds=1),
    maximum_interval=timedelta(seconds=5),
)


@workflow.defn
class TransitionWorkflow:
    @workflow.init
    def __init__(self, inp: TransitionInput) -> None:
        self._inp = inp
        self._ledger: Outbox[AuditEntry | WebhookEvent] = Outbox(
            self._write_ledger, hold=self._applying
        )
        self._announcer: Outbox[WebhookEvent] = Outbox(self._announce, hold=self._applying)
        self._record = RequestRecord(inp, ledger=self._ledger, announcer=self._announcer)
        # Logged here, before any handler can run: a decision that arrives with the start
        # (create, then approve at once) always comes after the request in the trail.
        self._requested = self._record.log(
            AuditType.REQUESTED_TRANSITION,
            inp.requester.sub,
            comment=inp.comment,
            system_comment=self._record.rollback_note(),
        )
        self._pin = ArtifactPin(inp, self._record, self._fail, since=self._since)
        self._supersede: SupersedeInput | None = None
        """Set by the move: the next `record_changes` tells the requests it supersedes."""
        self._window = ChangeWindowWait(inp, self._record)
        self._ci = {
            check.check_id: CiCheckRun(check, inp, self._record)
            for check in inp.rule.checks
            if is_ci_check(check)
        }

    # -- the process ------------------------------------------------------------------------

    @workflow.run
    async def run(self, inp: TransitionInput) -> RequestSnapshot:
        record = self._record
        self._ledger.start()
        if self._one_activity():
            self._announcer.forward_to(self._ledger)
        elif workflow.patched(WEBHOOK_EVENTS_PATCH):
            self._announcer.start()
        self._open()
        self._pin.start()
        pinning = asyncio.create_task(self._pin.pin())
        checks = [asyncio.create_task(self._run_check(check)) for check in inp.rule.checks]

        try:
            # Expiry runs on Temporal's clock from the workflow's start, not the API's clock.
            await workflow.wait_condition(record.decided, timeout=inp.rule.expires_after)
        except TimeoutError:
            self._expire()

        if record.state is RequestState.PENDING:
            failed = record.failed_checks()
            if failed:
                reason = "; ".join(f"{c.check_id}: {c.summary}" for c in failed)
                record.close(RequestState.FAILED_VALIDATION, reason)
            else:
                self._announce_approved()
                if await self._window.wait() and await self._recheck():
                    await self._apply()
                if (
                    record.state is RequestState.APPLIED
                    and not self._one_activity()
                    and workflow.patched(FAILURES_RECORDED_PATCH)
                ):
                    await self._close_superseded()

        for task in checks:
            task.cancel()
        await asyncio.gather(*checks, return_exceptions=True)
        await self._pin.settle(pinning)
        record.cancel_running_checks()
        await workflow.wait_condition(workflow.all_handlers_finished)
        self._ledger.close()
        self._announcer.close()
        await self._ledger.drained()
        await self._announcer.drained()
        return record.snapshot()

    def _open(self) -> None:
        inp, record = self._inp, self._record
        record.announce(
            request_created_events(
                self._requested.id,
                **record.event_fields(),
                comment=inp.comment,
                text=f"{inp.requester.sub} requested moving version {inp.version} of "
                f"{inp.model} to {inp.target}",
            )
        )

    def _announce_approved(self) -> None:
        inp, record = self._inp, self._record
        record.announce_one(
            "TRANSITION_REQUEST_APPROVED",
            f"{inp.request_id}/approved",
            text=f"approved by {', '.join(record.approvers()) or 'policy (no approval needed)'}",
        )

    def _expire(self) -> None:
        inp, record = self._inp, self._record
        record.close(
            RequestState.EXPIRED, f"no decision within {format_duration(inp.rule.expires_after)}"
        )
        record.announce_one(
            "TRANSITION_REQUEST_EXPIRED", f"{inp.request_id}/expired", text=record.reason
        )

    async def _run_check(self, check: Check) -> None:
        ci = self._ci.get(check.check_id)
        if ci is not None:
            await ci.run()
            return
        inp = self._inp
        try:
            result = await workflow.execute_activity_method(
                CheckActivities.run_check,
                CheckInput(
                    request_id=inp.request_id,
                    model=inp.model,
                    version=inp.version,
                    target=inp.target,
                    check=check,
                ),
                schedule_to_close_timeout=check.timeout,
                start_to_close_timeout=min(check.timeout, timedelta(minutes=5)),
                retry_policy=_CHECK_RETRY,
            )
        except ActivityError as err:
            if isinstance(err.cause, CancelledError):
                # The request was decided and this check cancelled: `run` marks it CANCELLED.
                return
            result = CheckResult(
                check_id=check.check_id,
                type=check.type,
                status=CheckStatus.FAILED,
                summary=(
                    f"did not finish within {format_duration(check.timeout)}: {cause_message(err)}"
                ),
                evidence={"error": cause_message(err)},
            )
        result.finished_ms = workflow_ms()
        self._record.record_check(result)

    async def _recheck(self) -> bool:
        """After waiting for a change window: run the checks again (a CI job's verdict stands,
        its artifacts being pinned by the digest). False when the request closed meanwhile."""
        if not self._window.waited:
            return True
        inp, record = self._inp, self._record
        again = [check for check in inp.rule.checks if not is_ci_check(check)]
        record.rerun_checks([check.check_id for check in again])
        await asyncio.gather(*(self._run_check(check) for check in again))
        if record.state is not RequestState.SCHEDULED:
            return False
        failed = record.failed_checks()
        if failed:
            reason = "; ".join(f"{c.check_id}: {c.summary}" for c in failed)
            record.close(
                RequestState.FAILED_VALIDATION, f"re-checked as the change window opened: {reason}"
            )
            return False
        return True

    async def _apply(self) -> None:
        inp, record = self._inp, self._record
        record.set_state(RequestState.APPLYING)
        if not await self._pin.verified():
            return
        try:
            # A regular activity, not a local one: it is scheduled by the workflow task that
            # accepts the last approval, so that approval is durable before MLflow changes.
            outcome = await workflow.execute_activity_method(
                RegistryActivities.apply_transition,
                ApplyInput(
                    request_id=inp.request_id,
                    model=inp.model,
                    version=inp.version,
                    target=inp.target,
                    from_stage=inp.from_stage,
                    archive_existing_versions=inp.rule.archive_existing_versions,
                    pinned=self._pin.for_apply(),
                ),
                **self._pin.apply_timeouts(),
                schedule_to_close_timeout=timedelta(hours=24),
                retry_policy=_APPLY_RETRY,
            )
        except ActivityError as err:
            self._fail(cause_message(err))
            return
        approvers = record.approvers()
        system_comment = (
            f"Applied by Signoff after {len(approvers)} approval(s) "
            f"({', '.join(approvers) or 'none required'}); policy {inp.policy_hash[:12]}"
        )
        if inp.rule.archive_existing_versions and not outcome.to_stage.startswith("@"):
            system_comment += f"; other versions in {outcome.to_stage} archived"
        notes = [self._pin.summary(), record.rollback_note()]
        if self._window.waited:
            notes.append("applied when the change window opened")
        system_comment += "".join(f"; {note}" for note in notes if note)
        applied = record.log(
            AuditType.APPLIED_TRANSITION,
            approvers[-1] if approvers else SYSTEM_USER,
            from_stage=outcome.from_stage,
            system_comment=system_comment,
        )
        if self._one_activity():
            self._supersede = self._superseding()
        record.close(RequestState.APPLIED, None)
        record.announce(
            transition_events(
                applied.id,
                **record.event_fields(from_stage=outcome.from_stage),
                text=system_comment,
            )
        )

    async def _close_superseded(self) -> None:
        """The other open requests on this version that started from its old stage no longer
        hold: they are told so, and each closes itself naming this request."""
        supersede = self._superseding()
        if supersede is None:
            return
        await workflow.execute_activity_method(
            RegistryActivities.close_superseded,
            supersede,
            start_to_close_timeout=timedelta(seconds=30),
            retry_policy=_LEDGER_RETRY,
        )

    def _superseding(self) -> SupersedeInput | None:
        """The applied move, for the other open requests on the version it leaves behind
        (None: an alias, or a move to where the version was)."""
        inp = self._inp
        if is_alias(inp.target) or inp.from_stage == inp.target:
            return None
        return SupersedeInput(
            request_id=inp.request_id,
            model=inp.model,
            version=inp.version,
            from_stage=inp.from_stage,
            to_stage=inp.target,
        )

    def _one_activity(self) -> bool:
        return workflow.patched(ONE_OUTBOX_PATCH)

    def _since(self, patch: str) -> bool:
        """Whether this run has `patch`: every run since ONE_OUTBOX_PATCH has them all, and
        records no marker for them (two history events each)."""
        return self._one_activity() or workflow.patched(patch)

    def _fail(self, reason: str) -> None:
        """End the request FAILED: on the record (an entry by Signoff) and announced."""
        record = self._record
        record.close(RequestState.FAILED, reason)
        if not self._since(FAILURES_RECORDED_PATCH):
            return
        entry = record.log(
            AuditType.CANCELLED_REQUEST, SYSTEM_USER, system_comment=f"Closed as FAILED: {reason}"
        )
        record.announce_one("TRANSITION_REQUEST_FAILED", entry.id, text=reason)

    @workflow.signal
    def superseded(self, by: Superseded) -> None:
        """Signoff moved this version by another request (`close_superseded`). If this
        request started from the stage the version has left and is still waiting, it no
        longer holds: it ends now, naming the request that moved the version."""
        inp, record = self._inp, self._record
        if record.state is not RequestState.PENDING or record.ready_to_apply():
            return  # decided already; an apply re-reads the version and says why it fails
        if is_alias(inp.target) or inp.from_stage == by.to_stage:
            return
        self._fail(
            f"version {inp.version} of {inp.model} was moved from {by.from_stage} to "
            f"{by.to_stage} by Signoff request {by.request_id}; this request, from "
            f"{inp.from_stage} to {inp.target}, no longer holds: request again"
        )

    def _applying(self) -> bool:
        return self._record.applying()

    # -- the outboxes -----------------------------------------------------------------------

    async def _write_ledger(self, batch: list[AuditEntry | WebhookEvent]) -> None:
        entries = [item for item in batch if isinstance(item, AuditEntry)]
        update = LedgerUpdate(
            snapshot=self._record.snapshot(), entries=entries, notify=self._inp.rule.notify
        )
        if not self._one_activity():
            await workflow.execute_activity_method(
                LedgerActivities.record_ledger,
                update,
                start_to_close_timeout=timedelta(seconds=10),
                retry_policy=_LEDGER_RETRY,
            )
            return
        supersede, self._supersede = self._supersede, None
        events = [item for item in batch if isinstance(item, WebhookEvent)]
        await workflow.execute_activity_method(
            ChangeActivities.record_changes,
            ChangeUpdate(ledger=update, events=events, supersede=supersede),
            start_to_close_timeout=timedelta(seconds=30),
            retry_policy=_LEDGER_RETRY,
        )

    async def _announce(self, events: list[WebhookEvent]) -> None:
        """Receivers are never waited for (each delivery is its own workflow), so a slow one
        cannot hold up a request; an announcement that fails for good is logged, never allowed
        to fail the request."""
        try:
            await workflow.execute_activity_method(
                AnnounceActivities.announce_webhooks,
                events,
                start_to_close_timeout=timedelta(seconds=30),
                retry_policy=_LEDGER_RETRY,
            )
        except ActivityError as err:  # only a non-retryable error gets here
            workflow.logger.error(
                "could not announce %s: %s",
                ", ".join(event.event for event in events),
                cause_message(err),
            )

    # -- updates: the decisions of people ---------------------------------------------------

    @workflow.update
    async def approve(self, decision: Decision) -> DecisionResult:
        record = self._record
        sub = decision.principal.sub
        # Validated already, but another decision in the same task may have settled it since.
        self._require_pending()
        if sub in record.approvers():  # two concurrent updates passed validation together
            raise refused(f"{sub} has already approved this request")
        roles = self._acting_roles(decision)
        record.approve(sub, decision.comment, roles)
        entry = record.log(AuditType.APPROVED_REQUEST, sub, comment=decision.comment, roles=roles)
        if record.ready_to_apply():
            # This approval completes the request: answer once MLflow has the transition (the
            # answer carries the record, which the API writes so the approver reads their own
            # write; before the patch, once the ledger had it too).
            ledgered = not self._since(ANSWER_APPLIED_PATCH)
            with contextlib.suppress(TimeoutError):
                await workflow.wait_condition(
                    lambda: (
                        record.state not in _DECIDING and (self._ledger.caught_up or not ledgered)
                    ),
                    timeout=APPLY_WAIT,
                )
        return self._result(entry)

    @approve.validator
    def _validate_approve(self, decision: Decision) -> None:
        self._require_pending()
        inp = self._inp
        self._refuse_if(
            approval_refusal(
                inp.policy,
                inp.rule,
                model=inp.model,
                target=inp.target,
                requester=inp.requester.sub,
                approvers=self._record.approvers(),
                principal=decision.principal,
            )
        )

    @workflow.update
    async def reject(self, decision: Decision) -> DecisionResult:
        self._require_pending()
        return self._decide_to_close(decision, AuditType.REJECTED_REQUEST, RequestState.REJECTED)

    @reject.validator
    def _validate_reject(self, decision: Decision) -> None:
        self._require_pending()
        inp = self._inp
        self._refuse_if(
            rejection_refusal(
                inp.policy,
                inp.rule,
                model=inp.model,
                target=inp.target,
                principal=decision.principal,
            )
        )

    @workflow.update
    async def cancel(self, decision: Decision) -> DecisionResult:
        self._require_cancellable()
        return self._decide_to_close(decision, AuditType.CANCELLED_REQUEST, RequestState.CANCELLED)

    @cancel.validator
    def _validate_cancel(self, decision: Decision) -> None:
        self._require_cancellable()
        inp = self._inp
        self._refuse_if(
            cancel_refusal(
                inp.policy,
                model=inp.model,
                requester=inp.requester.sub,
                principal=decision.principal,
            )
        )

    def _decide_to_close(
        self, decision: Decision, audit_type: AuditType, state: RequestState
    ) -> DecisionResult:
        record = self._record
        sub = decision.principal.sub
        roles = self._acting_roles(decision, cancelling=audit_type is AuditType.CANCELLED_REQUEST)
        entry = record.log(audit_type, sub, comment=decision.comment, roles=roles)
        record.close(state, f"{state.value.lower()} by {sub}")
        record.announce_one(
            f"TRANSITION_REQUEST_{state.value}",
            entry.id,
            comment=decision.comment,
            text=record.reason,
        )
        return self._result(entry)

    def _acting_roles(self, decision: Decision, *, cancelling: bool = False) -> list[str]:
        """The decider's roles that count for this request, recorded beside the decision."""
        inp = self._inp
        return acting_roles(
            inp.policy,
            inp.rule,
            model=inp.model,
            target=inp.target,
            principal=decision.principal,
            cancelling=cancelling,
            requester=inp.requester.sub,
        )

    def _result(self, entry: AuditEntry) -> DecisionResult:
        record = self._record
        return DecisionResult(
            entry=entry,
            state=record.state,
            reason=record.reason,
            approvals=len(record.approvals),
            quorum=self._inp.rule.approvals.quorum,
            apply_at_ms=record.apply_at_ms,
            ledger=LedgerUpdate(
                snapshot=record.snapshot(),
                entries=[e for e in self._ledger.unconfirmed() if isinstance(e, AuditEntry)],
            ),
        )

    # -- updates: a CI job reporting ---------------------------------------------------------

    @workflow.update
    async def ci_callback(self, callback: CiCallback) -> CheckResult:
        # Validated already, but another callback may have been accepted since.
        self._validate_ci_callback(callback)
        return self._ci_check(callback.check_id).accept(callback)

    @ci_callback.validator
    def _validate_ci_callback(self, callback: CiCallback) -> None:
        self._require_pending()
        self._ci_check(callback.check_id).validate(callback)

    def _ci_check(self, check_id: str) -> CiCheckRun:
        ci = self._ci.get(check_id)
        if ci is not None:
            return ci
        checks = {check.check_id: check for check in self._inp.rule.checks}
        check = checks.get(check_id)
        if check is None:
            known = ", ".join(checks) or "none"
            raise invalid_callback(f"this request has no check {check_id!r} (its checks: {known})")
        raise invalid_callback(
            f"check {check_id} is a {check.type} check; only "
            f"{' and '.join(CI_CHECK_TYPES)} checks report by callback"
        )

    # -- queries and guards -----------------------------------------------------------------

    @workflow.query
    def snapshot(self) -> RequestSnapshot:
        return self._record.snapshot()

    def _require_cancellable(self) -> None:
        """A request waiting for its change window can still be cancelled."""
        if self._record.state is not RequestState.SCHEDULED:
            self._require_pending()

    def _require_pending(self) -> None:
        record = self._record
        if record.state is RequestState.SCHEDULED:
            raise not_open(
                f"the request is approved and scheduled ({record.reason}); it can only be "
                "cancelled now"
            )
        if record.state is RequestState.APPLYING or record.ready_to_apply():
            raise not_open("the request is already approved and its transition is being applied")
        if record.state is not RequestState.PENDING:
            why = f": {record.reason}" if record.reason else ""
            raise not_open(f"the request is no longer open (it is {record.state.value}{why})")

    @staticmethod
    def _refuse_if(reason: str | None) -> None:
        if reason:
            raise refused(reason)
