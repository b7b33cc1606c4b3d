"""GitHub deployments waiting on Signoff: turn a verified `deployment_protection_rule` event
into the durable gate that answers it (`workflows.deployments`). No HTTP types here."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from api.deps import Services
from api.models.github import DeploymentProtectionRuleEvent
from api.services.errors import Invalid, Unavailable
from policies import gate_wait
from workflows.client import TEMPORAL_WAIT_S
from workflows.deployments.callback import callback_target
from workflows.deployments.workflow import start_gate
from workflows.messages import DeploymentEvent, GateInput


def deployment_event(
    services: Services, body: DeploymentProtectionRuleEvent, delivery_id: str, received_ms: int
) -> DeploymentEvent:
    """The event as the gate takes it; Invalid unless its callback URL is the review endpoint
    of its repository on SIGNOFF_GITHUB_API_URL (the run id comes from that URL)."""
    try:
        run_id = callback_target(
            body.deployment_callback_url,
            services.settings.github_api_url,
            body.repository.full_name,
        )
    except ValueError as err:
        raise Invalid(str(err)) from None
    return DeploymentEvent(
        delivery_id=delivery_id,
        repository=body.repository.full_name,
        repository_id=str(body.repository.id),
        run_id=run_id,
        environment=body.environment,
        installation_id=str(body.installation.id),
        deployment_id=str(body.deployment.id) if body.deployment and body.deployment.id else None,
        received_ms=received_ms,
    )


async def open_gate(services: Services, event: DeploymentEvent) -> str:
    """Start (or join) the gate of the event's run and environment, with the wait the policy
    sets for that environment pinned; its workflow id."""
    inp = GateInput(
        event=event,
        wait=gate_wait(services.policy, event.environment),
        poll=timedelta(seconds=services.settings.github_gate_poll_s),
    )
    client = (await services.transitions()).client
    try:
        async with asyncio.timeout(TEMPORAL_WAIT_S):
            return await start_gate(client, services.settings.task_queue, inp)
    except Exception as err:
        raise Unavailable(
            f"Temporal at {services.settings.temporal_address} could not start the deployment "
            f"gate ({type(err).__name__}); GitHub can redeliver the event",
            which="temporal",
        ) from err
