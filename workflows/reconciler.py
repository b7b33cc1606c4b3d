"""Catching changes made behind Signoff's back.

Signoff keeps, per version, the stage and aliases it expects MLflow to show (the registry
marks, see `Ledger.mark_pending`). Whatever else MLflow shows was changed directly in MLflow:
an out-of-band change. Two things look for them: MLflow's own webhooks, as they arrive (the
API's `/hooks/mlflow`), and the reconciler, a Temporal schedule that compares every version in
MLflow with the marks every `SIGNOFF_RECONCILE_INTERVAL_S` seconds, so a bypass is caught even
where MLflow's webhooks are not set up. Each change is recorded once in the version's activity
log (`SYSTEM_TRANSITION`, with the change in `system_comment`) and announced to webhooks
(`OUT_OF_BAND_CHANGE`, plus `MODEL_VERSION_TRANSITIONED_*` for a stage change).

A pass also settles requests the ledger still shows open whose workflow ended without saying
so (an operator terminated it, say): they are recorded as FAILED, with the reason; and it
announces comments whose announcement the API could not start (Temporal was unreachable).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import uuid
from dataclasses import dataclass
from datetime import timedelta

from pydantic import BaseModel
from temporalio import activity, workflow
from temporalio.common import RetryPolicy

from workflows.domain import now_ms

with workflow.unsafe.imports_passed_through():
    from temporalio.client import (
        Client,
        Schedule,
        ScheduleActionStartWorkflow,
        ScheduleAlreadyRunningError,
        ScheduleIntervalSpec,
        ScheduleOverlapPolicy,
        SchedulePolicy,
        ScheduleSpec,
        ScheduleUpdate,
        ScheduleUpdateInput,
        WorkflowExecutionStatus,
    )
    from temporalio.service import RPCError, RPCStatusCode

    from workflows.domain import AuditEntry, AuditType, RequestState
    from workflows.ledger import Ledger
    from workflows.ledger.models import ReconcilerRunRow, RegistryMarkRow
    from workflows.ledger.store import PENDING_GRACE_MS
    from workflows.messages import LedgerUpdate
    from workflows.mlflow_client import MlflowRegistry, ModelVersion
    from workflows.settings import WorkerSettings
    from workflows.transition import TransitionWorkflow
    from workflows.webhooks.events import (
        WebhookEvent,
        announce_all,
        comment_event,
        transition_events,
    )

COMMENT_SWEEP_MARGIN_MS = 5 * 60 * 1000
"""Each pass re-announces the comments posted since shortly before the previous pass."""
OUT_OF_BAND_USER = "mlflow"
"""Who an out-of-band change is recorded as made by: MLflow does not say who."""


@dataclass(frozen=True)
class Change:
    """One difference between what Signoff expects and what MLflow shows."""

    what: str
    from_stage: str | None = None
    to_stage: str | None = None
    is_stage: bool = False


def differences(mark: RegistryMarkRow | None, actual: ModelVersion) -> list[Change]:
    """What MLflow shows for the version that Signoff does not expect. A version never seen
    is expected as MLflow creates one: in stage None, without aliases."""
    expected_stage = mark.stage if mark else "None"
    expected_aliases = set(mark.aliases or []) if mark else set()
    changes: list[Change] = []
    if actual.current_stage != expected_stage:
        changes.append(
            Change(
                f"stage changed from {expected_stage} to {actual.current_stage}",
                expected_stage,
                actual.current_stage,
                is_stage=True,
            )
        )
    for alias in sorted(set(actual.aliases) - expected_aliases):
        changes.append(Change(f"alias @{alias} set on this version", to_stage=f"@{alias}"))
    for alias in sorted(expected_aliases - set(actual.aliases)):
        changes.append(Change(f"alias @{alias} removed from this version", from_stage=f"@{alias}"))
    return changes


def out_of_band(
    change_id: str, model: str, version: str, change: Change, *, seen_by: str, now_ms: int
) -> tuple[AuditEntry, list[WebhookEvent]]:
    """The log line and the webhook events of one out-of-band change. `change_id` must be
    stable for the change (retries record it once)."""
    entry = AuditEntry(
        id=f"oob-{change_id}",
        request_id="",
        seq=0,
        model=model,
        version=version,
        activity_type=AuditType.SYSTEM_TRANSITION,
        user_id=OUT_OF_BAND_USER,
        from_stage=change.from_stage,
        to_stage=change.to_stage,
        system_comment=(
            f"Out-of-band change, made directly in MLflow and not through Signoff: "
            f"{change.what} (seen by {seen_by})"
        ),
        creation_timestamp=now_ms,
    )
    fields = {
        "model_name": model,
        "version": version,
        "from_stage": change.from_stage,
        "to_stage": change.to_stage,
        "text": entry.system_comment,
        "event_timestamp": now_ms,
    }
    events = [
        WebhookEvent(
            event_id=f"{entry.id}/OUT_OF_BAND_CHANGE", event="OUT_OF_BAND_CHANGE", **fields
        )
    ]
    if change.is_stage and change.to_stage:
        events += transition_events(
            entry.id,
            model=model,
            version=version,
            to_stage=change.to_stage,
            from_stage=change.from_stage,
            text=entry.system_comment,
            event_timestamp=now_ms,
        )
    return entry, events


def stable_id(*parts: object) -> str:
    return hashlib.sha256("\x00".join(str(p) for p in parts).encode()).hexdigest()[:24]


# -- the reconciler -------------------------------------------------------------------------


class ReconcileSummary(BaseModel):
    versions: int
    changes: int
    baseline: bool
    settled: int = 0
    """Requests whose workflow ended without recording it (see `_settle_ended_runs`)."""


class ReconcileActivities:
    def __init__(self, registry: MlflowRegistry, ledger: Ledger, task_queue: str) -> None:
        self.registry = registry
        self.ledger = ledger
        self.task_queue = task_queue

    @activity.defn
    async def reconcile_registry(self) -> ReconcileSummary:
        """Compare every version in MLflow with the marks; record and announce each change.
        The first pass ever takes the registry as it is (there is nothing to compare yet). Each
        pass also settles requests whose workflow ended without saying so."""
        started = now_ms()
        versions = await self.registry.all_model_versions()
        previous = await asyncio.to_thread(self.ledger.list_reconciler_runs, 1)
        baseline = not previous
        marks = await asyncio.to_thread(self.ledger.all_marks)
        busy = {
            mark.model_name
            for mark in marks.values()
            if mark.pending_request and started - (mark.pending_ms or 0) < PENDING_GRACE_MS
        }
        changes = 0
        for actual in versions:
            if actual.name in busy:
                continue  # Signoff is applying a transition there (and its side effects)
            mark = marks.get((actual.name, actual.version))
            found = [] if baseline else differences(mark, actual)
            if found:
                changes += len(found)
                await self._record(actual, mark, found)
            elif mark is None or mark.pending_request:
                await self._observe(actual)
        if previous:
            await self._announce_comments_since(previous[0].started_ms - COMMENT_SWEEP_MARGIN_MS)
        summary = ReconcileSummary(
            versions=len(versions),
            changes=changes,
            baseline=baseline,
            settled=await self._settle_ended_runs(),
        )
        await asyncio.to_thread(
            self.ledger.add_reconciler_run,
            ReconcilerRunRow(
                id=uuid.uuid4().hex,
                started_ms=started,
                finished_ms=now_ms(),
                versions=summary.versions,
                changes=summary.changes,
                baseline=baseline,
            ),
        )
        return summary

    async def _announce_comments_since(self, since_ms: int) -> None:
        """The API announces `COMMENT_CREATED` as a comment is posted; if Temporal could not be
        reached just then, the comment is announced here. Announcing is idempotent per comment,
        so comments announced already change nothing."""
        entries = await asyncio.to_thread(
            self.ledger.activities_since, AuditType.NEW_COMMENT, since_ms
        )
        events = [
            comment_event(
                entry.id.removeprefix("comment-"),
                model=entry.model,
                version=entry.version,
                user_id=entry.user_id,
                text=entry.comment or "",
                created_ms=entry.creation_timestamp,
            )
            for entry in entries
        ]
        if events:
            await announce_all(activity.client(), self.ledger, self.task_queue, events)

    async def _settle_ended_runs(self) -> int:
        """Requests the ledger still shows open whose workflow run is over without having
        recorded its end: terminated by an operator, timed out, or gone from Temporal. They
        are recorded as FAILED with the reason, so nobody waits on them."""
        client = activity.client()
        settled = 0
        for request in await asyncio.to_thread(
            self.ledger.list_requests, open_only=True, limit=10_000
        ):
            handle = client.get_workflow_handle_for(
                TransitionWorkflow.run, request.workflow_id, run_id=request.run_id
            )
            try:
                status = (await handle.describe()).status
            except RPCError as err:
                if err.status != RPCStatusCode.NOT_FOUND:
                    raise
                how = "no longer exists in Temporal"
            else:
                if status is None or status == WorkflowExecutionStatus.RUNNING:
                    continue
                if status == WorkflowExecutionStatus.COMPLETED:  # its last write was lost
                    final = await handle.result()
                    await asyncio.to_thread(self.ledger.record, LedgerUpdate(snapshot=final))
                    settled += 1
                    continue
                how = f"was {status.name.lower().replace('_', ' ')}"
            ended = request.model_copy(
                update={
                    "state": RequestState.FAILED,
                    "reason": f"its workflow {how} before the request was decided; nothing "
                    "more will happen to it (request again; if it was being applied, check "
                    "MLflow)",
                    "revision": request.revision + 1,
                    "updated_ms": now_ms(),
                }
            )
            await asyncio.to_thread(self.ledger.record, LedgerUpdate(snapshot=ended))
            activity.logger.warning("request %s: its workflow %s", request.id, how)
            settled += 1
        return settled

    async def _record(
        self, actual: ModelVersion, mark: RegistryMarkRow | None, found: list[Change]
    ) -> None:
        now = now_ms()
        since = mark.updated_ms if mark else 0
        entries: list[AuditEntry] = []
        events: list[WebhookEvent] = []
        for change in found:
            # Stable over retries of this activity: the mark is unchanged until _observe.
            change_id = stable_id(actual.name, actual.version, change.what, since)
            entry, change_events = out_of_band(
                change_id, actual.name, actual.version, change, seen_by="the reconciler", now_ms=now
            )
            entries.append(entry)
            events.extend(change_events)
        await asyncio.to_thread(self.ledger.append_activities, entries)
        await announce_all(activity.client(), self.ledger, self.task_queue, events)
        await self._observe(actual)

    async def _observe(self, actual: ModelVersion) -> None:
        await asyncio.to_thread(
            self.ledger.mark_observed,
            actual.name,
            actual.version,
            stage=actual.current_stage,
            aliases=list(actual.aliases),
            now_ms=now_ms(),
        )


@workflow.defn
class ReconcileWorkflow:
    """One pass of the reconciler (started by the schedule)."""

    @workflow.run
    async def run(self) -> ReconcileSummary:
        return await workflow.execute_activity_method(
            ReconcileActivities.reconcile_registry,
            start_to_close_timeout=timedelta(minutes=10),
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
    schedule = Schedule(
        action=ScheduleActionStartWorkflow(
            ReconcileWorkflow.run,
            id=f"signoff-reconcile/{settings.task_queue}",
            task_queue=settings.task_queue,
        ),
        spec=ScheduleSpec(
            intervals=[ScheduleIntervalSpec(every=timedelta(seconds=settings.reconcile_interval_s))]
        ),
        policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.SKIP),
    )
    try:
        await client.create_schedule(schedule_id(settings), schedule)
    except ScheduleAlreadyRunningError:

        def update(_: ScheduleUpdateInput) -> ScheduleUpdate:
            return ScheduleUpdate(schedule=schedule)

        with contextlib.suppress(Exception):
            await client.get_schedule_handle(schedule_id(settings)).update(update)


async def run_reconciler_now(client: Client, settings: WorkerSettings) -> None:
    """Trigger a pass at once (overlap policy: skipped while one runs)."""
    await client.get_schedule_handle(schedule_id(settings)).trigger()
