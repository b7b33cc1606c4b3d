"""The worker process: runs TransitionWorkflows, webhook deliveries, the reconciler, the Slack
messages' updaters, GitHub deployment gates and break-glass reviews, and their activities."""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta

from temporalio.client import Client
from temporalio.worker import Worker
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

from workflows.activities import CiActivities, SignoffActivities
from workflows.activities.artifacts import ArtifactActivities
from workflows.activities.changes import ChangeActivities
from workflows.audit.anchor import AnchorActivities, AuditAnchorWorkflow, ensure_anchor_schedule
from workflows.build_id import worker_build_id
from workflows.client import connect
from workflows.deployments.activities import GateActivities
from workflows.deployments.app_auth import GithubAppAuth
from workflows.deployments.workflow import DeploymentGateWorkflow
from workflows.ledger import Ledger
from workflows.metrics import MetricsServer
from workflows.mlflow_client import MlflowRegistry
from workflows.reconcile.activities import ReconcileActivities
from workflows.reconcile.workflow import ReconcileWorkflow, ensure_schedule
from workflows.reviews import BreakGlassReviewWorkflow
from workflows.settings import WorkerSettings
from workflows.slack.message import SlackActivities, SlackMessageWorkflow
from workflows.startup import StartupAborted, ready_ledger, wait_for
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
    anchors = AnchorActivities(activities.ledger, settings.task_queue)
    artifacts = ArtifactActivities(activities.registry, settings.digest_max_file_mb)
    slack = SlackActivities(activities.ledger, settings)
    gates = GateActivities(activities.ledger, GithubAppAuth.from_settings(settings))
    changes = ChangeActivities(activities.outbox, activities.moves, announcer)
    return Worker(
        client,
        task_queue=settings.task_queue,
        workflows=[
            TransitionWorkflow,
            WebhookDeliveryWorkflow,
            ReconcileWorkflow,
            SlackMessageWorkflow,
            AuditAnchorWorkflow,
            DeploymentGateWorkflow,
            BreakGlassReviewWorkflow,
        ],
        activities=[
            *activities.defns(),
            ci.dispatch_ci,
            ci.poll_ci,
            webhooks.deliver_attempt,
            webhooks.give_up_delivery,
            announcer.announce_webhooks,
            changes.record_changes,
            reconciler.reconcile_registry,
            anchors.anchor_audit_chain,
            artifacts.digest_artifacts,
            slack.send_slack_message,
            slack.give_up_slack_message,
            *gates.defns(),
        ],
        # A workflow's next task waits this long on a worker that died holding it in its cache
        # before any other worker takes it; SDK default 10 s, the whole time a decision may
        # wait to be accepted (`workflows.client.TEMPORAL_WAIT_S`).
        sticky_queue_schedule_to_start_timeout=STICKY_TIMEOUT,
        # On shutdown (SIGTERM), polling stops at once and running activities get this long
        # to finish before they are cancelled (and retried elsewhere).
        graceful_shutdown_timeout=timedelta(seconds=settings.worker_shutdown_grace_s),
        workflow_runner=WORKFLOW_RUNNER,
        max_cached_workflows=settings.worker_max_cached_workflows,
        build_id=worker_build_id(),  # not the SDK's default: it hashes every loaded module
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
    """Run until `stop` is set (or forever). Waits for the ledger's database (then migrates
    it), Temporal and MLflow first, with backoff (`workflows.startup`); a `stop` during that
    wait ends it quietly."""
    ledger = Ledger(settings.database_url or "")
    port = settings.worker_metrics_port
    metrics = MetricsServer(settings, port) if port else None
    try:
        await ready_ledger(settings, ledger, stop=stop)
        client = await wait_for(
            "Temporal",
            settings.temporal_address,
            "SIGNOFF_TEMPORAL_ADDRESS",
            lambda: connect(settings),
            timeout_s=settings.startup_timeout_s,
            stop=stop,
        )
        async with MlflowRegistry.from_settings(settings) as registry:
            await wait_for(
                "MLflow",
                settings.mlflow_tracking_uri,
                "SIGNOFF_MLFLOW_TRACKING_URI",
                registry.ping,
                timeout_s=settings.startup_timeout_s,
                stop=stop,
            )
            worker = build_worker(client, settings, SignoffActivities(registry, ledger))
            await ensure_schedule(client, settings)
            await ensure_anchor_schedule(client, settings)
            log.info(
                "worker polling task queue %r on %s", settings.task_queue, settings.temporal_address
            )
            async with worker:
                await (stop.wait() if stop else asyncio.Future())
                log.info(
                    "worker stopping: no new tasks; running activities get up to %g s to finish",
                    settings.worker_shutdown_grace_s,
                )
            log.info("worker stopped")
    except StartupAborted:
        log.info("worker stopped before it started polling")
    finally:
        if metrics is not None:
            metrics.close()
        ledger.dispose()
