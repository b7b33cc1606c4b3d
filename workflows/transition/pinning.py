"""Approval pinned to the artifact: the request's part that takes the digest of the version's
artifacts when the request opens, and takes it again right before the move is applied.

The move is not applied before the digest is recorded (`RequestRecord.awaiting_digest`), so
every approval approves a known set of files; if the files changed by the time it applies, the
request ends FAILED naming what changed, and MLflow is left as it was.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from workflows.activities.artifacts import ArtifactActivities
    from workflows.artifacts import describe_digest, digest_changes
    from workflows.domain import ArtifactDigest
    from workflows.errors import STALE_REQUEST, cause_message
    from workflows.messages import DigestInput, TransitionInput
    from workflows.transition.record import RequestRecord

DIGEST_PATCH = "pin-artifact-digest"
"""Runs started before it take no digest and apply without comparing one."""
VERIFY_IN_APPLY_PATCH = "verify-digest-in-apply"
"""Runs that reached their apply before it compare the digest in an activity of their own;
since, the apply activity compares it in the attempt that moves the version (one workflow task
and one MLflow read fewer between the last approval and the move)."""

_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    maximum_interval=timedelta(seconds=30),
    non_retryable_error_types=[STALE_REQUEST],
)
_HEARTBEAT = timedelta(seconds=20)
_ATTEMPT = timedelta(hours=2)
_IN_ALL = timedelta(hours=6)
_SETTLE = timedelta(seconds=5)
"""How long a request that closed waits for a digest under way before it stops waiting."""


class ArtifactPin:
    def __init__(
        self,
        inp: TransitionInput,
        record: RequestRecord,
        fail: Callable[[str], None],
        *,
        since: Callable[[str], bool],
    ) -> None:
        """`since(patch)`: whether the run has that patch (`workflow.patched`, or implied)."""
        self._inp = inp
        self._since = since
        self._record = record
        self._fail = fail
        self.enabled = False
        self._in_apply = False

    def start(self) -> None:
        """Decide (once, for the run's whole life) whether this run pins its artifacts."""
        self.enabled = self._since(DIGEST_PATCH)
        self._record.awaiting_digest = self.enabled

    async def pin(self) -> None:
        """Take the digest; a version that cannot be read ends the request FAILED."""
        if not self.enabled:
            return
        try:
            digest = await self._digest(None)
        except ActivityError as err:
            if self._record.state.is_open:
                self._fail(f"could not pin the artifacts to approve: {cause_message(err)}")
            return
        self._record.pin(digest)

    async def settle(self, pinning: asyncio.Task[None]) -> None:
        """At the request's end: let a digest under way finish (for up to `_SETTLE`), so no
        activity outlives its run, then stop waiting for it (MLflow may be down)."""
        if self.enabled and not pinning.done():
            with contextlib.suppress(TimeoutError):
                await workflow.wait_condition(pinning.done, timeout=_SETTLE)
            pinning.cancel()
        await asyncio.gather(pinning, return_exceptions=True)

    async def verified(self) -> bool:
        """Right before the move: wait for the pinned digest, take it again and compare. False
        (the request closed: FAILED, saying what changed) when the move must not happen."""
        record = self._record
        if not self.enabled:
            return True
        await workflow.wait_condition(
            lambda: not record.awaiting_digest or not record.state.is_open
        )
        if not record.state.is_open:
            return False
        self._in_apply = self._since(VERIFY_IN_APPLY_PATCH)
        if self._in_apply:
            return True  # `for_apply()`: the apply activity compares
        changed = await self._changes()
        if changed:
            self._fail(changed)
            return False
        return True

    def apply_timeouts(self) -> dict[str, timedelta]:
        """The apply activity's attempt timeouts: an attempt that hashes the artifacts may take
        as long as a digest, heartbeating as it hashes; one that does not, 15 s."""
        if self.for_apply() is None:
            return {"start_to_close_timeout": timedelta(seconds=15)}
        return {"start_to_close_timeout": _ATTEMPT, "heartbeat_timeout": _HEARTBEAT}

    def for_apply(self) -> ArtifactDigest | None:
        """The pinned digest the apply activity compares the artifacts with (None: compared
        already, or nothing pinned)."""
        return self._record.digest if self._in_apply else None

    async def _changes(self) -> str | None:
        """None when the artifacts are still the ones pinned; otherwise why not, in words."""
        pinned = self._record.digest
        if pinned is None:
            return None
        try:
            now = await self._digest(pinned.max_file_mb)
        except ActivityError as err:
            return f"could not verify the artifacts before applying: {cause_message(err)}"
        changed = digest_changes(pinned, now)
        if not changed:
            return None
        return f"the artifacts changed after approval ({'; '.join(changed)}); request again"

    def summary(self) -> str | None:
        """The pinned digest in one line, for the applied transition's record."""
        digest = self._record.digest
        return f"{describe_digest(digest)}, unchanged since the request" if digest else None

    async def _digest(self, max_file_mb: float | None) -> ArtifactDigest:
        inp = self._inp
        return await workflow.execute_activity_method(
            ArtifactActivities.digest_artifacts,
            DigestInput(
                request_id=inp.request_id,
                model=inp.model,
                version=inp.version,
                max_file_mb=max_file_mb,
                # At open, the API's read of the version; a verification reads it again.
                source=inp.opened if max_file_mb is None else None,
            ),
            start_to_close_timeout=_ATTEMPT,
            schedule_to_close_timeout=_IN_ALL,
            heartbeat_timeout=_HEARTBEAT,
            retry_policy=_RETRY,
        )
