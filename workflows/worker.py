"""The worker process: runs TransitionWorkflows, webhook deliveries, the reconciler and
break-glass reviews, and their activities."""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta

from temporalio.client import Client
from temporalio.worker import Worker

from workflows.activities import CiActivities, SignoffActivities
from workflows.client import connect
from workflows.ledger import Ledger
from workflows.mlflow_client import MlflowRegistry
from workflows.reconcile.activities import ReconcileActivities
from workflows.reconcile.workflow import ReconcileWorkflow, ensure_schedule
from workflows.reviews import BreakGlassReviewWorkflow
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
    return Worker(
        client,
        task_queue=settings.task_queue,
        workflows=[
            TransitionWorkflow,
            WebhookDeliveryWorkflow,
            ReconcileWorkflow,
            BreakGlassReviewWorkflow,
        ],
        activities=[
            *activities.defns(),
            ci.dispatch_ci,
            ci.poll_ci,
            webhooks.deliver_attempt,
            webhooks.give_up_delivery,
            announcer.announce_webhooks,
            reconciler.reconcile_registry,
        ],
        # A workflow's next task waits this long on a worker that died holding it in its cache
        # before any other worker takes it; SDK default 10 s, the whole time a decision may
        # wait to be accepted (`workflows.client.TEMPORAL_WAIT_S`).
        sticky_queue_schedule_to_start_timeout=STICKY_TIMEOUT,
    )


STICKY_TIMEOUT = timedelta(seconds=3)


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
