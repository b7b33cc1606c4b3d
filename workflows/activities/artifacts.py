"""The `digest_artifacts` activity: the digest of a version's artifacts (`workflows.artifacts`),
streamed and hashed chunk by chunk, heartbeating as it goes, so a large model is never held in
memory and a stuck download is noticed by its heartbeat timeout."""

from __future__ import annotations

import time
from collections.abc import Callable

from temporalio import activity
from temporalio.exceptions import ApplicationError

from workflows.artifacts import compute_digest
from workflows.domain import ArtifactDigest, now_ms
from workflows.errors import STALE_REQUEST
from workflows.messages import DigestInput, VersionSource
from workflows.mlflow_client import MlflowRegistry, ModelVersion, ResourceNotFound

HEARTBEAT_EVERY_S = 2.0
"""At most one heartbeat per this many seconds (the SDK throttles too; this keeps the calls
cheap on a fast stream)."""


class ArtifactActivities:
    def __init__(self, registry: MlflowRegistry, max_file_mb: float) -> None:
        self.registry = registry
        self.max_file_mb = max_file_mb

    @activity.defn
    async def digest_artifacts(self, inp: DigestInput) -> ArtifactDigest:
        """The version's digest now. `inp.max_file_mb` (the pinned digest's limit, when
        verifying) overrides the worker's, so both digests hash the same files. With
        `inp.source` (the version as the API read it at open) the version is not read again."""
        try:
            version = (
                from_source(inp.model, inp.version, inp.source)
                if inp.source is not None
                else await self.registry.get_model_version(inp.model, inp.version)
            )
        except ResourceNotFound as err:
            raise ApplicationError(
                f"version {inp.version} of {inp.model} no longer exists in MLflow",
                type=STALE_REQUEST,
                non_retryable=True,
            ) from err
        return await compute_digest(
            self.registry,
            version,
            max_file_mb=inp.max_file_mb or self.max_file_mb,
            now_ms=now_ms(),
            progress=heartbeating(),
        )


def from_source(model: str, version: str, source: VersionSource) -> ModelVersion:
    """The version as far as a digest reads it (its name, source, run and logged model)."""
    return ModelVersion(
        name=model,
        version=version,
        current_stage="",
        run_id=source.run_id,
        source=source.source,
        status=None,
        model_id=source.model_id,
    )


def heartbeating() -> Callable[[str], None]:
    """A digest's progress callback that heartbeats the running activity, at most every
    `HEARTBEAT_EVERY_S`."""
    last = [0.0]

    def progress(detail: str) -> None:
        now = time.monotonic()
        if now - last[0] >= HEARTBEAT_EVERY_S:
            last[0] = now
            activity.heartbeat(detail)

    return progress
