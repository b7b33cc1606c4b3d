"""A registry webhook's deliveries: `GET /api/2.0/signoff/registry-webhooks/deliveries` (each
with every attempt) and `POST .../redeliver` (send a past payload again). Who may see them is
who may see the webhook (`api.services.registry_webhooks`)."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query

from api.deps import PrincipalDep, ServicesDep
from api.errors import error_responses
from api.models.registry_webhooks import (
    Delivery,
    DeliveryList,
    DeliveryResponse,
    Redeliver,
    WebhookId,
)
from api.services.errors import Invalid, NotFound
from api.services.registry_webhooks import may_view, require_level, visible_webhook
from workflows.client import temporal_call
from workflows.domain import now_ms
from workflows.webhooks.events import start_delivery

router = APIRouter(
    prefix="/api/2.0/signoff/registry-webhooks",
    tags=["registry-webhooks"],
    responses=error_responses(400, 401, 403, 404),
)


@router.get("/deliveries")
async def list_deliveries(
    id: Annotated[WebhookId, Query()],
    principal: PrincipalDep,
    services: ServicesDep,
) -> DeliveryList:
    """A webhook's deliveries, newest first, each with every attempt."""
    await visible_webhook(services, principal, id)
    rows = await services.ledger.webhooks.deliveries(id)
    return DeliveryList(deliveries=[Delivery.of(row) for row in rows])


@router.post("/redeliver", responses=error_responses(503))
async def redeliver(
    body: Redeliver, principal: PrincipalDep, services: ServicesDep
) -> DeliveryResponse:
    """Send a past delivery's payload again, as a new durable delivery (new id, fresh
    retries)."""
    original = await services.ledger.webhooks.get_delivery(body.delivery_id)
    row = None
    if original is not None:
        row = await services.ledger.webhooks.get(original.webhook_id)
    if original is None or row is None or not may_view(services, principal, row):
        raise NotFound(f"no webhook delivery with id {body.delivery_id!r}")  # the same either way
    require_level(services, principal, row.model_name, row.status)
    if row.status == "DISABLED":
        raise Invalid(f"webhook {row.id!r} is DISABLED; set it ACTIVE or TEST_MODE first")
    transitions = await services.transitions()
    delivery_id = uuid.uuid4().hex
    copy = await services.ledger.webhooks.add_delivery(
        delivery_id=delivery_id,
        webhook_id=row.id,
        event=original.event,
        payload=original.payload,
        now_ms=now_ms(),
    )
    async with temporal_call("starting the delivery"):
        await start_delivery(transitions.client, services.settings.task_queue, delivery_id)
    return DeliveryResponse(delivery=Delivery.of(copy))
