"""The registry activities: `apply_transition` re-reads the version in MLflow, then moves it
once; `close_superseded` then tells the other open requests on the version that started from
its old stage that they no longer hold."""

from __future__ import annotations

import asyncio
import contextlib

from temporalio import activity
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from policies import is_alias
from workflows.activities.artifacts import from_source, heartbeating
from workflows.artifacts import compute_digest, digest_changes
from workflows.domain import ArtifactDigest, AuditType, now_ms
from workflows.errors import ARTIFACTS_CHANGED, MLFLOW_REFUSED, STALE_REQUEST
from workflows.ledger import Ledger
from workflows.messages import (
    ApplyInput,
    ApplyOutcome,
    Superseded,
    SupersedeInput,
    VersionSource,
)
from workflows.mlflow_client import InvalidRequest, MlflowRegistry, ModelVersion, ResourceNotFound
from workflows.moves import expect_moved, move_version


class RegistryActivities:
    def __init__(self, registry: MlflowRegistry, ledger: Ledger) -> None:
        self.registry = registry
        self.ledger = ledger

    @activity.defn
    async def apply_transition(self, inp: ApplyInput) -> ApplyOutcome:
        """Re-read the version, then move it. A retry that finds the move done reports it
        instead of moving again, so MLflow sees the transition once. The registry marks are
        set pending before MLflow is called, so MLflow's webhook about this very change (which
        may arrive before this activity returns) is not taken for a bypass.

        The pinned artifacts are listed and hashed again while the version is read (from the
        pinned source, which the read then confirms), so the digest costs no round trip of
        its own before the move."""
        digest = self._digest_pinned_source(inp)
        try:
            return await self._apply(inp, digest)
        finally:
            if digest is not None and not digest.done():
                digest.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await digest

    async def _apply(
        self, inp: ApplyInput, digest: asyncio.Task[ArtifactDigest] | None
    ) -> ApplyOutcome:
        try:
            version = await self.registry.get_model_version(inp.model, inp.version)
        except ResourceNotFound as err:
            raise ApplicationError(
                f"version {inp.version} of {inp.model} no longer exists in MLflow",
                type=STALE_REQUEST,
                non_retryable=True,
            ) from err
        already = (
            inp.target.removeprefix("@") in version.aliases
            if is_alias(inp.target)
            else version.current_stage == inp.target
        )
        if not already:
            if not is_alias(inp.target) and version.current_stage != inp.from_stage:
                raise ApplicationError(
                    f"version {inp.version} of {inp.model} moved from {inp.from_stage} to "
                    f"{version.current_stage} {await self._moved_by(inp, version.current_stage)}"
                    " since the request; request again",
                    type=STALE_REQUEST,
                    non_retryable=True,
                )
            await self._verify_pinned(inp, version, digest)
            try:
                await move_version(
                    self.registry,
                    self.ledger,
                    model=inp.model,
                    version=inp.version,
                    current_stage=version.current_stage,
                    target=inp.target,
                    archive_existing_versions=inp.archive_existing_versions,
                    change_id=inp.request_id,
                )
            except InvalidRequest as err:
                raise ApplicationError(
                    f"MLflow refused the transition: {err.message}",
                    type=MLFLOW_REFUSED,
                    non_retryable=True,
                ) from err
        else:
            # Moved by an earlier attempt whose answer was lost: Signoff made this change.
            await expect_moved(
                self.ledger,
                inp.model,
                inp.version,
                inp.target,
                inp.archive_existing_versions,
                inp.request_id,
            )
        return ApplyOutcome(from_stage=inp.from_stage, to_stage=inp.target, already_applied=already)

    def _digest_pinned_source(self, inp: ApplyInput) -> asyncio.Task[ArtifactDigest] | None:
        """The digest now of the files at the pinned source, started at once (a run's files:
        their listing depends on the source alone); None when nothing is pinned."""
        pinned = inp.pinned
        if pinned is None or not (pinned.source or "").startswith("runs:/"):
            return None
        source = VersionSource(source=pinned.source, run_id=pinned.run_id)
        return asyncio.create_task(
            self._digest_now(from_source(inp.model, inp.version, source), pinned)
        )

    async def _digest_now(self, version: ModelVersion, pinned: ArtifactDigest) -> ArtifactDigest:
        return await compute_digest(
            self.registry,
            version,
            max_file_mb=pinned.max_file_mb,
            now_ms=now_ms(),
            progress=heartbeating(),
        )

    async def _verify_pinned(
        self,
        inp: ApplyInput,
        version: ModelVersion,
        digest: asyncio.Task[ArtifactDigest] | None,
    ) -> None:
        """The artifacts are still the ones pinned when the request opened (taken again now,
        right before the move, from the version just read: the digest under way when the read
        confirms its source and run); otherwise nothing moves."""
        if inp.pinned is None:
            return
        same_source = (version.source, version.run_id) == (inp.pinned.source, inp.pinned.run_id)
        if digest is not None and same_source:
            now = await digest
        else:
            now = await self._digest_now(version, inp.pinned)
        changed = digest_changes(inp.pinned, now)
        if changed:
            raise ApplicationError(
                f"the artifacts changed after approval ({'; '.join(changed)}); request again",
                type=ARTIFACTS_CHANGED,
                non_retryable=True,
            )

    async def _moved_by(self, inp: ApplyInput, stage: str) -> str:
        """Who moved the version to `stage`: the Signoff request whose applied transition the
        ledger holds last, or someone outside Signoff."""
        for entry in reversed(await self.ledger.requests.audit_trail(inp.model, inp.version)):
            if entry.activity_type is AuditType.APPLIED_TRANSITION:
                if entry.to_stage == stage and entry.request_id != inp.request_id:
                    return f"by Signoff request {entry.request_id or entry.id}"
                break
        return "outside Signoff"

    @activity.defn
    async def close_superseded(self, inp: SupersedeInput) -> list[str]:
        """Signal every other open request on the version that Signoff just moved from
        `from_stage` to `to_stage`: each one whose own starting point no longer holds closes
        itself at once, naming this request. Returns the request ids signalled. A request that
        ended meanwhile is skipped; idempotent, since the signal is ignored by a closed run."""
        client = activity.client()
        signalled: list[str] = []
        for request in await self.ledger.requests.search(
            model=inp.model, version=inp.version, open_only=True
        ):
            if request.id == inp.request_id or is_alias(request.target):
                continue
            if request.from_stage == inp.to_stage:
                continue  # it starts from where the version is now
            handle = client.get_workflow_handle(request.workflow_id, run_id=request.run_id)
            try:
                await handle.signal(
                    "superseded",
                    Superseded(
                        request_id=inp.request_id,
                        from_stage=inp.from_stage,
                        to_stage=inp.to_stage,
                    ),
                )
            except RPCError as err:
                if err.status != RPCStatusCode.NOT_FOUND:
                    raise
                continue  # its run is over
            signalled.append(request.id)
        return signalled
