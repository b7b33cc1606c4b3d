"""The contract between the workflow's CI-check loop and each CI system's client."""

from __future__ import annotations

from typing import Any, Literal, Protocol

from pydantic import BaseModel, Field

from policies import CiCheck


class CiContext(BaseModel):
    """What a CI job is told about the request it validates."""

    request_id: str
    model: str
    version: str
    target: str
    check_id: str
    callback_url: str
    callback_token: str = Field(repr=False)


class CiRunRef(BaseModel):
    """How to find a dispatched job again: whatever the system gave back at dispatch."""

    system: Literal["github_actions", "jenkins"]
    dispatched_at_ms: int
    run_id: str | None = None
    url: str | None = None
    queue_url: str | None = None
    request_id: str | None = None
    """The request the job validates; set by the dispatch activity, so a client can find a job
    it has no id for yet (GitHub: the request id in the run's `display_title`)."""


class CiOutcome(BaseModel):
    status: Literal["running", "passed", "failed"]
    summary: str = ""
    evidence: dict[str, Any] = Field(default_factory=dict)
    ref: CiRunRef | None = None
    """The ref, possibly completed (a Jenkins queue item that became a build)."""


class CiClient(Protocol):
    async def dispatch(self, check: CiCheck, ctx: CiContext) -> CiRunRef:
        """Start the job. Raise `temporalio.exceptions.ApplicationError(non_retryable=True)`
        for a refusal that retrying cannot fix (404 job, 401/403 credentials); any other
        exception is retried with backoff by Temporal."""
        ...

    async def poll(self, check: CiCheck, ref: CiRunRef) -> CiOutcome:
        """The job's state now; `running` until it has a conclusion."""
        ...
