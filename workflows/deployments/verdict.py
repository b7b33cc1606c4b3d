"""What a waiting deployment is told: the verdict on the requests its run opened, in words.

Pure functions (the gate workflow calls them): approved once every request the run opened
that releases the environment is APPLIED; rejected as soon as one of them ended any other
way; otherwise still waiting. Each comment says what happened and, for a rejection, what to do.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Literal

from policies import format_duration
from workflows.domain import RequestState
from workflows.messages import DeploymentEvent, GatedRequest

Verdict = tuple[Literal["approved", "rejected"], str]
RERUN = "re-run the deployment job once it is resolved"


def _move(request: GatedRequest) -> str:
    return f"{request.model} v{request.version} → {request.target}"


def verdict(requests: list[GatedRequest]) -> Verdict | None:
    """The answer the requests give, or None while one is still open (or none exists)."""
    if not requests:
        return None
    ended = [r for r in requests if not r.state.is_open and r.state is not RequestState.APPLIED]
    if ended:
        return "rejected", "; ".join(_not_applied(request) for request in ended) + f"; {RERUN}"
    if any(request.state.is_open for request in requests):
        return None
    return "approved", "; ".join(_applied(request) for request in requests)


def _applied(request: GatedRequest) -> str:
    by = ", ".join(request.approvers) or "the policy (no approval needed)"
    return f"Signoff applied {_move(request)} (request {request.id}, approved by {by})"


def _not_applied(request: GatedRequest) -> str:
    text = f"Signoff request {request.id} ({_move(request)}) ended {request.state.value}"
    if request.reason:
        text += f": {request.reason}"
    if request.closing_comment:
        text += f' ("{request.closing_comment}")'
    return text


def no_rule(event: DeploymentEvent) -> str:
    return (
        f"No rule of Signoff's policy releases deployments to the environment "
        f"{event.environment!r}: add `github: {{environment: {event.environment}}}` to the "
        f"rule of the transition this deployment needs, then {RERUN}"
    )


def no_request(event: DeploymentEvent, wait: timedelta) -> str:
    return (
        f"No Signoff request releasing deployments to {event.environment!r} was opened by this "
        f"workflow run ({event.repository} run {event.run_id}) within "
        f"{format_duration(wait)}. Open one from an earlier job of this run with the job's "
        f"OIDC token (`signoff request MODEL VERSION TARGET`, `permissions: id-token: write`) "
        f"under a policy rule with `github: {{environment: {event.environment}}}`, then re-run "
        f"the workflow"
    )
