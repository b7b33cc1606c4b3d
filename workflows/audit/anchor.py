"""The periodic audit anchor: every `SIGNOFF_AUDIT_ANCHOR_INTERVAL_S` a schedule starts
`AuditAnchorWorkflow`, whose activity records the audit chain's head (length, hash, time) in
the ledger and announces it as the `AUDIT_ANCHOR` webhook event. A receiver that keeps the
events holds what `signoff audit verify --anchor LENGTH:HASH` checks an export against.
Recording and announcing are both keyed by the chain's length, so a retry changes nothing."""

from __future__ import annotations

from datetime import timedelta

from temporalio import activity, workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from temporalio.client import Client, ScheduleActionStartWorkflow

    from workflows.domain import now_ms
    from workflows.ledger import AuditAnchor, Ledger
    from workflows.schedules import ensure_interval_schedule
    from workflows.settings import WorkerSettings
    from workflows.webhooks.events import anchor_event, announce


async def record_anchor(client: Client, ledger: Ledger, task_queue: str) -> AuditAnchor | None:
    """Record the chain's head as an anchor and announce it; None while the chain is empty."""
    anchor = await ledger.audit.anchor(now_ms())
    if anchor is not None:
        await announce(client, ledger, task_queue, anchor_event(anchor))
    return anchor


class AnchorActivities:
    def __init__(self, ledger: Ledger, task_queue: str) -> None:
        self.ledger = ledger
        self.task_queue = task_queue

    @activity.defn
    async def anchor_audit_chain(self) -> AuditAnchor | None:
        return await record_anchor(activity.client(), self.ledger, self.task_queue)


@workflow.defn
class AuditAnchorWorkflow:
    """One anchor (started by the schedule)."""

    @workflow.run
    async def run(self) -> AuditAnchor | None:
        return await workflow.execute_activity_method(
            AnchorActivities.anchor_audit_chain,
            start_to_close_timeout=timedelta(minutes=1),
            retry_policy=RetryPolicy(maximum_interval=timedelta(minutes=1), maximum_attempts=10),
        )


def schedule_id(settings: WorkerSettings) -> str:
    return f"signoff-audit-anchor/{settings.task_queue}"


async def ensure_anchor_schedule(client: Client, settings: WorkerSettings) -> None:
    """Create the anchor's schedule, or bring its interval up to date (every worker, on start)."""
    action = ScheduleActionStartWorkflow(
        AuditAnchorWorkflow.run,
        id=f"signoff-audit-anchor/{settings.task_queue}",
        task_queue=settings.task_queue,
    )
    every = timedelta(seconds=settings.audit_anchor_interval_s)
    await ensure_interval_schedule(client, schedule_id(settings), action, every)
