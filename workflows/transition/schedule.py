"""Change windows and freezes: the request's part that holds an approved move until the rule
allows it to be applied.

The next opening is computed by pure policy code (`policies.next_opening`) from
`workflow.now()`, and waited for on a Temporal timer, so the wait survives restarts and replays
alike. While it waits the request is SCHEDULED, says when it applies, and can be cancelled.
When the timer fires the opening is computed again (a timer may fire late, and the policy
decides, not the timer); once the move is allowed the workflow re-checks before applying.
"""

from __future__ import annotations

from datetime import UTC, datetime

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from policies import closed_because, local_time, next_opening
    from workflows.domain import RequestState
    from workflows.messages import TransitionInput
    from workflows.transition.record import RequestRecord

WINDOWS_PATCH = "change-windows"
"""Marks the runs whose rule has windows or freezes (no earlier run had either)."""


class ChangeWindowWait:
    def __init__(self, inp: TransitionInput, record: RequestRecord) -> None:
        self._inp = inp
        self._record = record
        self.waited = False

    async def wait(self) -> bool:
        """Hold the approved move until the rule allows it. True: apply now; False: the
        request closed while it waited (cancelled, or no window ever opens)."""
        rule, record = self._inp.rule, self._record
        if not (rule.windows or rule.freezes) or not workflow.patched(WINDOWS_PATCH):
            return True
        while True:
            now = workflow.now().astimezone(UTC)
            opening = next_opening(rule.windows, rule.freezes, now)
            if opening is None:
                record.close(RequestState.FAILED, "no change window of the rule ever opens")
                return False
            if opening <= now:
                return record.state.is_open
            self._schedule(now, opening)
            try:
                await workflow.wait_condition(
                    lambda: record.state is not RequestState.SCHEDULED, timeout=opening - now
                )
            except TimeoutError:
                continue
            return False

    def _schedule(self, now: datetime, opening: datetime) -> None:
        inp, record = self._inp, self._record
        rule = inp.rule
        closed = closed_because(rule.windows, rule.freezes, now)
        reason = f"approved {closed}; applies at {local_time(opening, rule.windows, rule.freezes)}"
        first = not self.waited
        self.waited = True
        record.schedule(int(opening.timestamp() * 1000), reason)
        if first:
            record.announce_one(
                "TRANSITION_REQUEST_SCHEDULED",
                f"{inp.request_id}/scheduled",
                text=reason,
                apply_at=record.apply_at_ms,
            )
