"""TransitionWorkflow: one governed stage or alias transition, from request to record.

Two branches run at once: the validation checks the pinned policy names, and the approvals
that arrive as workflow Updates. When every check passed and the quorum is met, the version is
re-read and moved in MLflow once. A writer task copies every state change to the ledger in the
background, so the ledger never sits between the last approval and the applied transition.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
from datetime import datetime, timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError, CancelledError
from temporalio.exceptions import TimeoutError as ActivityTimeoutError

with workflow.unsafe.imports_passed_through():
    from policies import (
        CI_CHECK_TYPES,
        Check,
        CiCheck,
        approval_refusal,
        cancel_refusal,
        format_duration,
        is_ci_check,
        quorum_met,
        rejection_refusal,
    )
    from workflows.activities import MLFLOW_REFUSED, STALE_REQUEST, SignoffActivities
    from workflows.ci.activities import CI_NO_CLIENT, CiActivities
    from workflows.ci.base import CiOutcome
    from workflows.ci.github import CI_REFUSED
    from workflows.domain import (
        Approval,
        AuditEntry,
        AuditType,
        CheckResult,
        CheckStatus,
        RequestSnapshot,
        RequestState,
    )
    from workflows.messages import (
        ApplyInput,
        CheckInput,
        CiCallback,
        CiDispatchInput,
        CiPollInput,
        Decision,
        LedgerUpdate,
        TransitionInput,
    )
    from workflows.webhooks.events import (
        AnnounceActivities,
        WebhookEvent,
        request_created_events,
        transition_events,
    )

REFUSED = "Refused"
"""ApplicationError type of a decision the policy does not allow (the API answers 403)."""
NOT_OPEN = "NotOpen"
"""ApplicationError type of a decision on a request that is no longer open (the API: 400), and
of a CI callback for a check that is not waiting for one."""
INVALID_CALLBACK = "InvalidCallback"
"""ApplicationError type of a CI callback naming no CI check of the request (the API: 400)."""

SYSTEM_USER = "signoff"
WEBHOOK_EVENTS_PATCH = "announce-webhook-events"
"""Runs started before webhook events existed replay without the announcer."""
APPLY_WAIT = timedelta(seconds=10)
"""How long the approval that completes the quorum waits to report the applied transition
(in MLflow and in the ledger) before it answers anyway."""

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
_CI_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    maximum_interval=timedelta(minutes=1),
    non_retryable_error_types=[CI_REFUSED, CI_NO_CLIENT],
)
"""A CI system that is down is retried until the check's own timeout, never given up on."""
_CI_CALL_TIMEOUT = timedelta(minutes=2)
"""One attempt of one dispatch or poll (a few HTTP calls)."""


@workflow.defn
class TransitionWorkflow:
    @workflow.init
    def __init__(self, inp: TransitionInput) -> None:
        self._inp = inp
        self._state = RequestState.PENDING
        self._reason: str | None = None
        self._approvals: list[Approval] = []
        opening = inp.opening_snapshot("", None)
        self._checks: dict[str, CheckResult] = {c.check_id: c for c in opening.checks}
        self._seq = 0
        self._revision = 0
        self._updated_ms = inp.created_ms
        self._unwritten: list[AuditEntry] = []
        self._dirty = False
        self._writing = False
        self._finished = False
        self._ci_tokens: dict[str, str] = {}
        """check id -> SHA-256 of the callback token its job was given (never the token)."""
        self._ci_used: set[str] = set()
        """CI checks whose callback token was accepted: a token is accepted once."""
        self._unannounced: list[WebhookEvent] = []

    # -- main line --------------------------------------------------------------------------

    @workflow.run
    async def run(self, inp: TransitionInput) -> RequestSnapshot:
        writer = asyncio.create_task(self._ledger_writer())
        announcer = None
        if workflow.patched(WEBHOOK_EVENTS_PATCH):
            announcer = asyncio.create_task(self._announcer())
        requested = self._log(
            AuditType.REQUESTED_TRANSITION, inp.requester.sub, comment=inp.comment
        )
        self._announce(
            request_created_events(
                requested.id,
                **self._event_fields(),
                comment=inp.comment,
                text=f"{inp.requester.sub} requested moving version {inp.version} of "
                f"{inp.model} to {inp.target}",
            )
        )
        checks = [asyncio.create_task(self._run_check(check)) for check in inp.rule.checks]

        try:
            # Expiry runs on Temporal's clock from the workflow's start, not the API's clock.
            await workflow.wait_condition(self._decided, timeout=inp.rule.expires_after)
        except TimeoutError:
            expiry = format_duration(inp.rule.expires_after)
            self._close(RequestState.EXPIRED, f"no decision within {expiry}")
            self._announce_one(
                "TRANSITION_REQUEST_EXPIRED", f"{inp.request_id}/expired", text=self._reason
            )

        if self._state is RequestState.PENDING:
            failed = [c for c in self._checks.values() if c.status is CheckStatus.FAILED]
            if failed:
                reason = "; ".join(f"{c.check_id}: {c.summary}" for c in failed)
                self._close(RequestState.FAILED_VALIDATION, reason)
            else:
                await self._apply()

        for task in checks:
            task.cancel()
        await asyncio.gather(*checks, return_exceptions=True)
        for check_id, result in self._checks.items():
            if result.status is CheckStatus.RUNNING:
                self._checks[check_id] = result.model_copy(
                    update={"status": CheckStatus.CANCELLED, "summary": "the request was decided"}
                )
                self._touch()
        await workflow.wait_condition(workflow.all_handlers_finished)
        self._finished = True
        await writer
        if announcer is not None:
            await announcer
        return self._snapshot()

    def _decided(self) -> bool:
        if self._state is not RequestState.PENDING:
            return True
        statuses = [check.status for check in self._checks.values()]
        if CheckStatus.FAILED in statuses:
            return True
        return self._ready_to_apply()

    def _applying(self) -> bool:
        return self._state is RequestState.APPLYING or self._ready_to_apply()

    def _ready_to_apply(self) -> bool:
        return (
            self._state is RequestState.PENDING
            and all(check.status is CheckStatus.PASSED for check in self._checks.values())
            and quorum_met(self._inp.rule, self._approvers())
        )

    async def _apply(self) -> None:
        inp = self._inp
        self._set_state(RequestState.APPLYING)
        self._announce_one(
            "TRANSITION_REQUEST_APPROVED",
            f"{inp.request_id}/approved",
            text=f"approved by {', '.join(self._approvers()) or 'policy (no approval needed)'}",
        )
        try:
            # A regular activity, not a local one: it is scheduled by the workflow task that
            # accepts the last approval, so that approval is durable before MLflow changes.
            outcome = await workflow.execute_activity_method(
                SignoffActivities.apply_transition,
                ApplyInput(
                    request_id=inp.request_id,
                    model=inp.model,
                    version=inp.version,
                    target=inp.target,
                    from_stage=inp.from_stage,
                    archive_existing_versions=inp.rule.archive_existing_versions,
                ),
                start_to_close_timeout=timedelta(seconds=15),
                schedule_to_close_timeout=timedelta(hours=24),
                retry_policy=_APPLY_RETRY,
            )
        except ActivityError as err:
            self._close(RequestState.FAILED, _cause_message(err))
            return
        approvers = self._approvers()
        system_comment = (
            f"Applied by Signoff after {len(approvers)} approval(s) "
            f"({', '.join(approvers) or 'none required'}); policy {inp.policy_hash[:12]}"
        )
        if inp.rule.archive_existing_versions and not outcome.to_stage.startswith("@"):
            system_comment += f"; other versions in {outcome.to_stage} archived"
        applied = self._log(
            AuditType.APPLIED_TRANSITION,
            approvers[-1] if approvers else SYSTEM_USER,
            from_stage=outcome.from_stage,
            system_comment=system_comment,
        )
        self._close(RequestState.APPLIED, None)
        self._announce(
            transition_events(
                applied.id,
                **self._event_fields(from_stage=outcome.from_stage),
                text=system_comment,
            )
        )

    async def _run_check(self, check: Check) -> None:
        if is_ci_check(check):
            await self._run_ci_check(check)
            return
        inp = self._inp
        try:
            result = await workflow.execute_activity_method(
                SignoffActivities.run_check,
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
                    f"did not finish within {format_duration(check.timeout)}: {_cause_message(err)}"
                ),
                evidence={"error": _cause_message(err)},
            )
        result.finished_ms = self._now_ms()
        self._record_check(result)

    # -- CI checks: dispatch, then a callback or polling, until the check's timeout -------

    async def _run_ci_check(self, check: CiCheck) -> None:
        """Dispatch the job, then wait for its outcome: a `ci_callback` update records it at
        once; without one, `poll_ci` every `poll_interval`. Both activities retry a system that
        is down with backoff until the check's timeout, which is measured on workflow time from
        the start of the check. When the request is decided first, `run` cancels this task."""
        inp = self._inp
        check_id = check.check_id
        deadline = workflow.now() + check.timeout
        try:
            dispatched = await workflow.execute_activity_method(
                CiActivities.dispatch_ci,
                CiDispatchInput(
                    check=check,
                    request_id=inp.request_id,
                    model=inp.model,
                    version=inp.version,
                    target=inp.target,
                ),
                start_to_close_timeout=_CI_CALL_TIMEOUT,
                schedule_to_close_timeout=check.timeout,
                retry_policy=_CI_RETRY,
            )
        except ActivityError as err:
            if isinstance(err.cause, CancelledError):
                return
            self._ci_failed(check, err, deadline, None)
            return
        self._ci_tokens[check_id] = dispatched.token_sha256
        ref = dispatched.ref
        last = CiOutcome(
            status="running",
            summary=f"dispatched to {check.type}",
            evidence={"system": check.type, "run_url": ref.url, "run_id": ref.run_id},
            ref=ref,
        )
        self._ci_progress(check, last)
        while True:
            remaining = deadline - workflow.now()
            if remaining > timedelta(0):
                with contextlib.suppress(TimeoutError):
                    await workflow.wait_condition(
                        lambda: not self._ci_waiting(check_id),
                        timeout=min(check.poll_interval, remaining),
                    )
            if not self._ci_waiting(check_id):
                return  # a callback reported the outcome
            remaining = deadline - workflow.now()
            if remaining <= timedelta(0):
                self._ci_finish(
                    check,
                    CheckStatus.FAILED,
                    f"did not finish within {format_duration(check.timeout)} "
                    f"(last seen: {last.summary})",
                    last.evidence,
                )
                return
            try:
                outcome = await workflow.execute_activity_method(
                    CiActivities.poll_ci,
                    CiPollInput(check=check, ref=ref),
                    start_to_close_timeout=_CI_CALL_TIMEOUT,
                    schedule_to_close_timeout=remaining,
                    retry_policy=_CI_RETRY,
                )
            except ActivityError as err:
                if isinstance(err.cause, CancelledError):
                    return
                if self._ci_waiting(check_id):
                    self._ci_failed(check, err, deadline, last)
                return
            if not self._ci_waiting(check_id):
                return  # a callback arrived while polling; it is the record
            if outcome.ref is not None:
                ref = outcome.ref
            if outcome.status == "running":
                last = outcome
                self._ci_progress(check, outcome)
                continue
            status = CheckStatus.PASSED if outcome.status == "passed" else CheckStatus.FAILED
            self._ci_finish(check, status, outcome.summary, outcome.evidence)
            return

    def _ci_waiting(self, check_id: str) -> bool:
        return self._checks[check_id].status is CheckStatus.RUNNING

    def _ci_progress(self, check: CiCheck, outcome: CiOutcome) -> None:
        """Show a running job's state (its URL once known) on the request, when it changes."""
        current = self._checks[check.check_id]
        evidence = {key: value for key, value in outcome.evidence.items() if value is not None}
        if (current.summary, current.evidence) != (outcome.summary, evidence):
            self._checks[check.check_id] = current.model_copy(
                update={"summary": outcome.summary, "evidence": evidence}
            )
            self._touch()

    def _ci_finish(
        self,
        check: CiCheck,
        status: CheckStatus,
        summary: str,
        evidence: dict[str, Any],
    ) -> CheckResult:
        result = CheckResult(
            check_id=check.check_id,
            type=check.type,
            status=status,
            summary=summary,
            evidence={key: value for key, value in evidence.items() if value is not None},
            finished_ms=self._now_ms(),
        )
        self._record_check(result)
        return result

    def _record_check(self, result: CheckResult) -> None:
        self._checks[result.check_id] = result
        self._touch()
        if result.status is CheckStatus.FAILED:
            self._announce_one(
                "VALIDATION_CHECK_FAILED",
                f"{self._inp.request_id}/check/{result.check_id}",
                text=f"{result.check_id} ({result.type}): {result.summary}",
            )

    def _ci_failed(
        self,
        check: CiCheck,
        err: ActivityError,
        deadline: datetime,
        last: CiOutcome | None,
    ) -> None:
        message = _cause_message(err)
        evidence = {**(last.evidence if last else {"system": check.type}), "error": message}
        if isinstance(err.cause, ActivityTimeoutError) or workflow.now() >= deadline:
            # The system stayed unreachable (or kept failing) until the check's timeout.
            summary = f"did not finish within {format_duration(check.timeout)}: {message}"
        else:
            summary = message  # refused for good: bad credentials, no such job, ...
        self._ci_finish(check, CheckStatus.FAILED, summary, evidence)

    @workflow.update
    async def ci_callback(self, callback: CiCallback) -> CheckResult:
        # Validated already, but another callback may have been accepted since.
        self._validate_ci_callback(callback)
        check = self._ci_check(callback.check_id)
        by_token = callback.callback_token_sha256 is not None
        if by_token:
            self._ci_used.add(check.check_id)
        # Without a token the validator required a principal (the API authenticated it).
        reporter = callback.principal.sub if callback.principal and not by_token else None
        evidence = {
            **self._checks[check.check_id].evidence,
            "details_url": callback.details_url,
            "reported_by": reporter or "callback token",
            "reported_via": "callback",
        }
        verdict = "passed" if callback.passed else "failed"
        return self._ci_finish(
            check,
            CheckStatus.PASSED if callback.passed else CheckStatus.FAILED,
            callback.summary or f"the CI job reported that it {verdict}",
            evidence,
        )

    @ci_callback.validator
    def _validate_ci_callback(self, callback: CiCallback) -> None:
        self._require_pending()
        check = self._ci_check(callback.check_id)
        check_id = check.check_id
        digest = callback.callback_token_sha256
        expected = self._ci_tokens.get(check_id)
        token_valid = (
            digest is not None
            and expected is not None
            and hmac.compare_digest(digest.encode(), expected.encode())
        )
        if token_valid and check_id in self._ci_used:
            raise ApplicationError(
                f"this callback token of {check_id} was already used; a check accepts one callback",
                type=REFUSED,
            )
        current = self._checks[check_id]
        if current.status is not CheckStatus.RUNNING:
            raise ApplicationError(
                f"check {check_id} is not waiting for a result (it is {current.status.value})",
                type=NOT_OPEN,
            )
        if digest is not None:
            if expected is None:
                raise ApplicationError(
                    f"check {check_id} is still dispatching its job; call back once it runs",
                    type=NOT_OPEN,
                )
            if not token_valid:
                raise ApplicationError(
                    f"the callback token is not the one issued for {check_id} of this request",
                    type=REFUSED,
                )
        elif callback.principal is None:
            raise ApplicationError(
                "a CI callback needs the callback token issued for the check, or an "
                "authenticated caller",
                type=REFUSED,
            )
        elif not set(callback.principal.roles) & set(check.callback_roles):
            allowed = ", ".join(check.callback_roles) or "none: only the callback token counts"
            raise ApplicationError(
                f"{callback.principal.sub} may not report the result of {check_id}; roles "
                f"allowed to: {allowed}",
                type=REFUSED,
            )

    def _ci_check(self, check_id: str) -> CiCheck:
        checks = {check.check_id: check for check in self._inp.rule.checks}
        check = checks.get(check_id)
        if check is None:
            known = ", ".join(checks) or "none"
            raise ApplicationError(
                f"this request has no check {check_id!r} (its checks: {known})",
                type=INVALID_CALLBACK,
            )
        if not is_ci_check(check):
            raise ApplicationError(
                f"check {check_id} is a {check.type} check; only "
                f"{' and '.join(CI_CHECK_TYPES)} checks report by callback",
                type=INVALID_CALLBACK,
            )
        return check

    # -- updates: the decisions of people -------------------------------------------------

    @workflow.update
    async def approve(self, decision: Decision) -> AuditEntry:
        sub = decision.principal.sub
        if sub in self._approvers():  # two concurrent updates passed validation together
            raise ApplicationError(f"{sub} has already approved this request", type=REFUSED)
        self._approvals.append(
            Approval(user_id=sub, creation_timestamp=self._now_ms(), comment=decision.comment)
        )
        entry = self._log(AuditType.APPROVED_REQUEST, sub, comment=decision.comment)
        if self._ready_to_apply():
            # This approval completes the request: answer once MLflow has the transition and
            # the ledger has it too, so the approver reads their own write.
            with contextlib.suppress(TimeoutError):
                await workflow.wait_condition(
                    lambda: not self._state.is_open and self._ledger_caught_up(),
                    timeout=APPLY_WAIT,
                )
        return entry

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
                approvers=self._approvers(),
                principal=decision.principal,
            )
        )

    @workflow.update
    async def reject(self, decision: Decision) -> AuditEntry:
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
    async def cancel(self, decision: Decision) -> AuditEntry:
        return self._decide_to_close(decision, AuditType.CANCELLED_REQUEST, RequestState.CANCELLED)

    @cancel.validator
    def _validate_cancel(self, decision: Decision) -> None:
        self._require_pending()
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
        self, decision: Decision, activity_type: AuditType, state: RequestState
    ) -> AuditEntry:
        sub = decision.principal.sub
        entry = self._log(activity_type, sub, comment=decision.comment)
        self._close(state, f"{state.value.lower()} by {sub}")
        self._announce_one(
            f"TRANSITION_REQUEST_{state.value}",
            entry.id,
            comment=decision.comment,
            text=self._reason,
        )
        return entry

    @workflow.query
    def snapshot(self) -> RequestSnapshot:
        return self._snapshot()

    def _require_pending(self) -> None:
        if self._state is RequestState.APPLYING:
            raise ApplicationError(
                "the request is already approved and its transition is being applied", type=NOT_OPEN
            )
        if self._state is not RequestState.PENDING:
            raise ApplicationError(
                f"the request is no longer open (it is {self._state.value})", type=NOT_OPEN
            )

    @staticmethod
    def _refuse_if(reason: str | None) -> None:
        if reason:
            raise ApplicationError(reason, type=REFUSED)

    # -- the record -------------------------------------------------------------------------

    def _log(
        self,
        activity_type: AuditType,
        user_id: str,
        *,
        comment: str | None = None,
        from_stage: str | None = None,
        system_comment: str | None = None,
    ) -> AuditEntry:
        inp = self._inp
        self._seq += 1
        entry = AuditEntry(
            id=f"{inp.request_id}-{self._seq}",
            request_id=inp.request_id,
            seq=self._seq,
            model=inp.model,
            version=inp.version,
            activity_type=activity_type,
            user_id=user_id,
            from_stage=from_stage or inp.from_stage,
            to_stage=inp.target,
            comment=comment,
            system_comment=system_comment,
            creation_timestamp=self._now_ms(),
        )
        self._unwritten.append(entry)
        self._touch()
        return entry

    def _set_state(self, state: RequestState) -> None:
        self._state = state
        self._touch()

    def _close(self, state: RequestState, reason: str | None) -> None:
        self._reason = reason
        self._set_state(state)

    def _touch(self) -> None:
        self._revision += 1
        self._updated_ms = self._now_ms()
        self._dirty = True

    async def _ledger_writer(self) -> None:
        """Copy state changes to the ledger one batch at a time, in order, until the end.

        While the transition is being applied the writer holds back: a ledger write finishing
        then would queue a workflow task ahead of the one that reports the applied transition.
        """
        while True:
            await workflow.wait_condition(
                lambda: (self._dirty and not self._applying()) or self._finished
            )
            if not self._dirty:
                return
            batch, self._unwritten, self._dirty = self._unwritten, [], False
            self._writing = True
            await workflow.execute_activity_method(
                SignoffActivities.record_ledger,
                LedgerUpdate(snapshot=self._snapshot(), entries=batch),
                start_to_close_timeout=timedelta(seconds=10),
                retry_policy=_LEDGER_RETRY,
            )
            self._writing = False

    # -- webhook events ---------------------------------------------------------------------

    def _event_fields(self, from_stage: str | None = None) -> dict[str, Any]:
        inp = self._inp
        return {
            "model": inp.model,
            "version": inp.version,
            "to_stage": inp.target,
            "from_stage": from_stage or inp.from_stage,
            "request_id": inp.request_id,
            "event_timestamp": self._now_ms(),
        }

    def _announce_one(self, event: str, event_id: str, **fields: Any) -> None:
        base = self._event_fields()
        model, version = base.pop("model"), base.pop("version")
        self._announce(
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

    def _announce(self, events: list[WebhookEvent]) -> None:
        self._unannounced.extend(events)

    async def _announcer(self) -> None:
        """Hand events to `announce_webhooks` in order. Like the ledger writer it holds back
        while the transition is applied; receivers are never waited for (each delivery is its
        own workflow), so a slow one cannot hold up a request, and an announcement that fails
        for good is logged, never allowed to fail the request."""
        while True:
            await workflow.wait_condition(
                lambda: (bool(self._unannounced) and not self._applying()) or self._finished
            )
            if not self._unannounced:
                return
            batch, self._unannounced = self._unannounced, []
            try:
                await workflow.execute_activity_method(
                    AnnounceActivities.announce_webhooks,
                    batch,
                    start_to_close_timeout=timedelta(seconds=30),
                    retry_policy=_LEDGER_RETRY,
                )
            except ActivityError as err:  # only a non-retryable error gets here
                workflow.logger.error(
                    "could not announce %s: %s",
                    ", ".join(event.event for event in batch),
                    _cause_message(err),
                )

    def _ledger_caught_up(self) -> bool:
        return not self._dirty and not self._writing

    def _snapshot(self) -> RequestSnapshot:
        info = workflow.info()
        return self._inp.opening_snapshot(info.workflow_id, info.run_id).model_copy(
            update={
                "state": self._state,
                "reason": self._reason,
                "checks": list(self._checks.values()),
                "approvals": list(self._approvals),
                "revision": self._revision,
                "updated_ms": self._updated_ms,
            }
        )

    def _approvers(self) -> list[str]:
        return [approval.user_id for approval in self._approvals]

    @staticmethod
    def _now_ms() -> int:
        return int(workflow.now().timestamp() * 1000)


def _cause_message(err: ActivityError) -> str:
    cause = err.cause
    while cause is not None and cause.cause is not None and not isinstance(cause, ApplicationError):
        cause = cause.cause
    return getattr(cause, "message", None) or str(cause or err)
