"""One CI check of a request (GitHub Actions, Jenkins): dispatch the job, then learn its
outcome from a callback or by polling, until the check's timeout."""

from __future__ import annotations

import contextlib
import hmac
from datetime import datetime, timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, CancelledError
from temporalio.exceptions import TimeoutError as ActivityTimeoutError

with workflow.unsafe.imports_passed_through():
    from policies import CiCheck, format_duration
    from workflows.activities.ci import CiActivities
    from workflows.ci.base import CiOutcome, CiRunRef
    from workflows.domain import CheckResult, CheckStatus
    from workflows.errors import CI_NO_CLIENT, CI_REFUSED, cause_message, not_open, refused
    from workflows.messages import CiCallback, CiDispatchInput, CiPollInput, TransitionInput
    from workflows.transition.record import RequestRecord, workflow_ms

_CI_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    maximum_interval=timedelta(minutes=1),
    non_retryable_error_types=[CI_REFUSED, CI_NO_CLIENT],
)
"""A CI system that is down is retried until the check's own timeout, never given up on."""
_CI_CALL_TIMEOUT = timedelta(minutes=2)
"""One attempt of one dispatch or poll (a few HTTP calls)."""


class CiCheckRun:
    """The workflow owns one per CI check. `run` dispatches the job and waits for its outcome:
    a callback (the `ci_callback` update: `validate`, then `accept`) records it at once;
    without one, `poll_ci` every `poll_interval`. Both activities retry a system that is down
    with backoff until the check's timeout, measured on workflow time from the start of the
    check. When the request is decided first, the workflow cancels `run`."""

    def __init__(self, check: CiCheck, inp: TransitionInput, record: RequestRecord) -> None:
        self.check = check
        self._inp = inp
        self._record = record
        self._token_sha256: str | None = None
        """The SHA-256 of the callback token the job was given (never the token)."""
        self._token_used = False
        """A callback token is accepted once."""

    @property
    def check_id(self) -> str:
        return self.check.check_id

    async def run(self) -> None:
        check = self.check
        deadline = workflow.now() + check.timeout
        try:
            dispatched = await workflow.execute_activity_method(
                CiActivities.dispatch_ci,
                CiDispatchInput(
                    check=check,
                    request_id=self._inp.request_id,
                    model=self._inp.model,
                    version=self._inp.version,
                    target=self._inp.target,
                ),
                start_to_close_timeout=_CI_CALL_TIMEOUT,
                schedule_to_close_timeout=check.timeout,
                retry_policy=_CI_RETRY,
            )
        except ActivityError as err:
            if not isinstance(err.cause, CancelledError):
                self._failed(err, deadline, None)
            return
        self._token_sha256 = dispatched.token_sha256
        ref = dispatched.ref
        last = CiOutcome(
            status="running",
            summary=f"dispatched to {check.type}",
            evidence={"system": check.type, "run_url": ref.url, "run_id": ref.run_id},
            ref=ref,
        )
        self._record.show_progress(self.check_id, last.summary, last.evidence)
        await self._poll_until_decided(ref, last, deadline)

    async def _poll_until_decided(self, ref: CiRunRef, last: CiOutcome, deadline: datetime) -> None:
        check = self.check
        while True:
            remaining = deadline - workflow.now()
            if remaining > timedelta(0):
                with contextlib.suppress(TimeoutError):
                    await workflow.wait_condition(
                        lambda: not self._waiting(), timeout=min(check.poll_interval, remaining)
                    )
            if not self._waiting():
                return  # a callback reported the outcome
            remaining = deadline - workflow.now()
            if remaining <= timedelta(0):
                self._finish(
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
                if not isinstance(err.cause, CancelledError) and self._waiting():
                    self._failed(err, deadline, last)
                return
            if not self._waiting():
                return  # a callback arrived while polling; it is the record
            if outcome.ref is not None:
                ref = outcome.ref
            if outcome.status == "running":
                last = outcome
                self._record.show_progress(self.check_id, outcome.summary, outcome.evidence)
                continue
            status = CheckStatus.PASSED if outcome.status == "passed" else CheckStatus.FAILED
            self._finish(status, outcome.summary, outcome.evidence)
            return

    # -- the callback -----------------------------------------------------------------------

    def validate(self, callback: CiCallback) -> None:
        """Refuse a callback this check does not take (the update's validator)."""
        check_id = self.check_id
        digest = callback.callback_token_sha256
        expected = self._token_sha256
        token_valid = (
            digest is not None
            and expected is not None
            and hmac.compare_digest(digest.encode(), expected.encode())
        )
        if token_valid and self._token_used:
            raise refused(
                f"this callback token of {check_id} was already used; a check accepts one callback"
            )
        current = self._record.checks[check_id]
        if current.status is not CheckStatus.RUNNING:
            raise not_open(
                f"check {check_id} is not waiting for a result (it is {current.status.value})"
            )
        if digest is not None:
            if expected is None:
                raise not_open(
                    f"check {check_id} is still dispatching its job; call back once it runs"
                )
            if not token_valid:
                raise refused(
                    f"the callback token is not the one issued for {check_id} of this request"
                )
        elif callback.principal is None:
            raise refused(
                "a CI callback needs the callback token issued for the check, or an "
                "authenticated caller"
            )
        elif not set(callback.principal.roles) & set(self.check.callback_roles):
            allowed = ", ".join(self.check.callback_roles) or "none: only the callback token counts"
            raise refused(
                f"{callback.principal.sub} may not report the result of {check_id}; roles "
                f"allowed to: {allowed}"
            )

    def accept(self, callback: CiCallback) -> CheckResult:
        """Record the outcome a validated callback reports."""
        by_token = callback.callback_token_sha256 is not None
        if by_token:
            self._token_used = True
        # Without a token the validator required a principal (the API authenticated it).
        reporter = callback.principal.sub if callback.principal and not by_token else None
        evidence = {
            **self._record.checks[self.check_id].evidence,
            "details_url": callback.details_url,
            "reported_by": reporter or "callback token",
            "reported_via": "callback",
        }
        verdict = "passed" if callback.passed else "failed"
        return self._finish(
            CheckStatus.PASSED if callback.passed else CheckStatus.FAILED,
            callback.summary or f"the CI job reported that it {verdict}",
            evidence,
        )

    # -- results ----------------------------------------------------------------------------

    def _waiting(self) -> bool:
        return self._record.checks[self.check_id].status is CheckStatus.RUNNING

    def _finish(self, status: CheckStatus, summary: str, evidence: dict[str, Any]) -> CheckResult:
        result = CheckResult(
            check_id=self.check_id,
            type=self.check.type,
            status=status,
            summary=summary,
            evidence={key: value for key, value in evidence.items() if value is not None},
            finished_ms=workflow_ms(),
        )
        self._record.record_check(result)
        return result

    def _failed(self, err: ActivityError, deadline: datetime, last: CiOutcome | None) -> None:
        message = cause_message(err)
        evidence = {**(last.evidence if last else {"system": self.check.type}), "error": message}
        if isinstance(err.cause, ActivityTimeoutError) or workflow.now() >= deadline:
            # The system stayed unreachable (or kept failing) until the check's timeout.
            summary = f"did not finish within {format_duration(self.check.timeout)}: {message}"
        else:
            summary = message  # refused for good: bad credentials, no such job, ...
        self._finish(CheckStatus.FAILED, summary, evidence)
