"""The reconciler's workflow (one pass: `reconcile_registry`) and the schedule that starts it."""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from temporalio.client import Client, ScheduleActionStartWorkflow, ScheduleOverlapPolicy

    from workflows.reconcile.activities import ReconcileActivities, ReconcileSummary
    from workflows.schedules import ensure_interval_schedule
    from workflows.settings import WorkerSettings


HEARTBEAT_TIMEOUT = timedelta(minutes=2)
"""A pass heartbeats after each page of the registry; one that stops is retried."""


@workflow.defn
class ReconcileWorkflow:
    """One pass of the reconciler (started by the schedule)."""

    @workflow.run
    async def run(self) -> ReconcileSummary:
        return await workflow.execute_activity_method(
            ReconcileActivities.reconcile_registry,
            start_to_close_timeout=timedelta(minutes=10),
            heartbeat_timeout=HEARTBEAT_TIMEOUT,
            retry_policy=RetryPolicy(
                initial_interval=timedelta(seconds=5),
                maximum_interval=timedelta(minutes=1),
                maximum_attempts=5,
            ),
        )


def schedule_id(settings: WorkerSettings) -> str:
    """One reconciler per task queue (one per Signoff deployment on a Temporal namespace)."""
    return f"signoff-reconciler/{settings.task_queue}"


async def ensure_schedule(client: Client, settings: WorkerSettings) -> None:
    """Create the reconciler's schedule, or bring its interval up to date. Every worker calls
    this on start; overlapping passes are skipped."""
    action = ScheduleActionStartWorkflow(
        ReconcileWorkflow.run,
        id=f"signoff-reconcile/{settings.task_queue}",
        task_queue=settings.task_queue,
    )
    every = timedelta(seconds=settings.reconcile_interval_s)
    await ensure_interval_schedule(client, schedule_id(settings), action, every)


async def run_reconciler_now(client: Client, settings: WorkerSettings) -> None:
    """Trigger a pass at once. While one is under way (its record may already be written while
    its workflow closes), the asked-for pass runs right after it rather than being skipped, as
    the schedule's own overlapping passes are: whoever asked is promised a pass."""
    await client.get_schedule_handle(schedule_id(settings)).trigger(
        overlap=ScheduleOverlapPolicy.BUFFER_ONE
    )
