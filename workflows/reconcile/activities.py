"""One pass of the reconciler: compare every version in MLflow with the registry marks, record
and announce each out-of-band change (see `workflows.reconcile`).

A pass also settles requests the ledger still shows open whose workflow ended without saying
so (an operator terminated it, say): they are recorded as FAILED, with the reason; and it
announces comments whose announcement the API could not start (Temporal was unreachable).
"""

from __future__ import annotations

import uuid

from pydantic import BaseModel
from temporalio import activity
from temporalio.client import WorkflowExecutionStatus
from temporalio.service import RPCError, RPCStatusCode

from workflows.client import ended_without_decision, how_it_ended
from workflows.domain import AuditEntry, AuditType, now_ms
from workflows.ledger import PENDING_GRACE_MS, Ledger, RegistryMark
from workflows.mlflow_client import MlflowRegistry, ModelVersion
from workflows.reconcile.changes import Change, differences, out_of_band, stable_id
from workflows.transition import TransitionWorkflow
from workflows.webhooks.events import WebhookEvent, announce_all, comment_event

COMMENT_SWEEP_MARGIN_MS = 5 * 60 * 1000
"""Each pass re-announces the comments posted since shortly before the previous pass."""
PAGE_SIZE = 500
"""Versions read from MLflow per page; the pass heartbeats after each page."""


class ReconcileSummary(BaseModel):
    versions: int
    changes: int
    baseline: bool
    settled: int = 0
    """Requests whose workflow ended without recording it (see `_settle_ended_runs`)."""


class ReconcileActivities:
    def __init__(
        self,
        registry: MlflowRegistry,
        ledger: Ledger,
        task_queue: str,
        *,
        page_size: int = PAGE_SIZE,
    ) -> None:
        self.registry = registry
        self.ledger = ledger
        self.task_queue = task_queue
        self.page_size = page_size

    @activity.defn
    async def reconcile_registry(self) -> ReconcileSummary:
        """Compare every version in MLflow with the marks; record and announce each change.
        The first pass ever takes the registry as it is (there is nothing to compare yet). Each
        pass also settles requests whose workflow ended without saying so.

        The registry is read a page at a time, with a heartbeat after each page (the workflow
        sets a heartbeat timeout, so a pass stuck on one page is retried rather than waited
        on for the whole start-to-close timeout). The marks of the page's models are read after
        each page (so a pass costs the same per page however large the registry): a
        version's mark is never older than what MLflow was seen to show, so a transition
        Signoff applies meanwhile is pending in the mark, not taken for a bypass."""
        started = now_ms()
        previous = await self.ledger.runs.latest(1)
        baseline = not previous
        versions = changes = 0
        async for page in self.registry.model_version_pages(self.page_size):
            marks = await self.ledger.marks.of_models({version.name for version in page})
            changes += await self._compare(page, marks, started=started, baseline=baseline)
            versions += len(page)
            activity.heartbeat(versions)
        if previous:
            await self._announce_comments_since(previous[0].started_ms - COMMENT_SWEEP_MARGIN_MS)
        summary = ReconcileSummary(
            versions=versions,
            changes=changes,
            baseline=baseline,
            settled=await self._settle_ended_runs(),
        )
        await self.ledger.runs.add(
            run_id=uuid.uuid4().hex,
            started_ms=started,
            finished_ms=now_ms(),
            versions=summary.versions,
            changes=summary.changes,
            baseline=baseline,
        )
        return summary

    async def _compare(
        self,
        page: list[ModelVersion],
        marks: dict[tuple[str, str], RegistryMark],
        *,
        started: int,
        baseline: bool,
    ) -> int:
        """Record the changes of one page of versions; returns how many there were."""
        busy = {
            mark.model_name
            for mark in marks.values()
            if mark.pending_request and started - (mark.pending_ms or 0) < PENDING_GRACE_MS
        }
        changes = 0
        for actual in page:
            if actual.name in busy:
                continue  # Signoff is applying a transition there (and its side effects)
            mark = marks.get((actual.name, actual.version))
            found = [] if baseline else differences(mark, actual)
            if found:
                changes += len(found)
                await self._record(actual, mark, found)
            elif mark is None or mark.pending_request:
                await self._observe(actual)
        return changes

    async def _announce_comments_since(self, since_ms: int) -> None:
        """The API announces `COMMENT_CREATED` as a comment is posted; if Temporal could not be
        reached just then, the comment is announced here. Announcing is idempotent per comment,
        so comments announced already change nothing."""
        entries = await self.ledger.requests.entries_since(AuditType.NEW_COMMENT, since_ms)
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
        for request in await self.ledger.requests.search(open_only=True, limit=10_000):
            activity.heartbeat()
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
                    await self.ledger.requests.record(snapshot=final)
                    settled += 1
                    continue
                how = how_it_ended(status)
            ended = ended_without_decision(request, how)
            await self.ledger.requests.record(snapshot=ended)
            activity.logger.warning("request %s: its workflow %s", request.id, how)
            settled += 1
        return settled

    async def _record(
        self, actual: ModelVersion, mark: RegistryMark | None, found: list[Change]
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
        await self.ledger.requests.append_entries(entries=entries)
        await announce_all(activity.client(), self.ledger, self.task_queue, events)
        await self._observe(actual)

    async def _observe(self, actual: ModelVersion) -> None:
        await self.ledger.marks.set_observed(
            model=actual.name,
            version=actual.version,
            stage=actual.current_stage,
            aliases=list(actual.aliases),
            now_ms=now_ms(),
        )
