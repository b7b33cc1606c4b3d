"""The worker process: runs TransitionWorkflows, webhook deliveries and the reconciler, and their
activities."""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta

from temporalio.client import Client
from temporalio.worker import Worker
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

from workflows.activities import CiActivities, SignoffActivities
from workflows.activities.artifacts import ArtifactActivities
from workflows.client import connect
from workflows.ledger import Ledger
from workflows.mlflow_client import MlflowRegistry
from workflows.reconcile.activities import ReconcileActivities
from workflows.reconcile.workflow import ReconcileWorkflow, ensure_schedule
from workflows.settings import WorkerSettings
from workflows.transition import TransitionWorkflow
from workflows.webhooks.delivery import WebhookActivities, WebhookDeliveryWorkflow
from workflows.webhooks.events import AnnounceActivities

log = logging.getLogger(__name__)


def build_worker(
    client: Client,
    settings: WorkerSettings,
    activities: SignoffActivities,
    ci: CiActivities | None = None,
    webhooks: WebhookActivities | None = None,
) -> Worker:
    """`ci` defaults to the CI clients configured by `settings` (GitHub, Jenkins); `webhooks`
    to webhook delivery over the activities' ledger."""
    ci = ci or CiActivities(settings)
    webhooks = webhooks or WebhookActivities(activities.ledger, settings)
    announcer = AnnounceActivities(webhooks.ledger, settings.task_queue, settings.callback_base_url)
    reconciler = ReconcileActivities(activities.registry, activities.ledger, settings.task_queue)
    artifacts = ArtifactActivities(activities.registry, settings.digest_max_file_mb)
    return Worker(
        client,
        task_queue=settings.task_queue,
        workflows=[TransitionWorkflow, WebhookDeliveryWorkflow, ReconcileWorkflow],
        activities=[
            *activities.defns(),
            ci.dispatch_ci,
            ci.poll_ci,
            webhooks.deliver_attempt,
            webhooks.give_up_delivery,
            announcer.announce_webhooks,
            reconciler.reconcile_registry,
            artifacts.digest_artifacts,
        ],
        # A workflow's next task waits this long on a worker that died holding it in its cache
        # before any other worker takes it; SDK default 10 s, the whole time a decision may
        # wait to be accepted (`workflows.client.TEMPORAL_WAIT_S`).
        sticky_queue_schedule_to_start_timeout=STICKY_TIMEOUT,
        workflow_runner=WORKFLOW_RUNNER,
    )


STICKY_TIMEOUT = timedelta(seconds=3)

WORKFLOW_RUNNER = SandboxedWorkflowRunner(
    restrictions=SandboxRestrictions.default.with_passthrough_modules("policies", "workflows")
)
"""The sandbox, with Signoff's own modules imported once for all runs instead of again for
each new workflow (a tenth of the worker's time under load went to that re-import). They are
deterministic by design; the recorded-history replays (`tests/workflows/test_replay.py`) run
them under the full sandbox, which still checks them."""


async def run_worker(settings: WorkerSettings, *, stop: asyncio.Event | None = None) -> None:
    """Run until `stop` is set (or forever). Migrates the ledger first."""
    ledger = Ledger(settings.database_url or "")
    await ledger.migrate()
    client = await connect(settings)
    async with MlflowRegistry.from_settings(settings) as registry:
        worker = build_worker(client, settings, SignoffActivities(registry, ledger))
        await ensure_schedule(client, settings)
        log.info(
            "worker polling task queue %r on %s", settings.task_queue, settings.temporal_address
        )
        async with worker:
            await (stop.wait() if stop else asyncio.Future())
    ledger.dispose()
