"""Registry webhooks: Databricks' `/api/2.0/mlflow/registry-webhooks/{create,list,update,
delete,test}`.

Who may do what is in `api.services.registry_webhooks`; changing or deleting a webhook needs
the level of its current status and of the new one. The secret and the authorization header
are stored encrypted and never returned.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Query

from api.deps import PrincipalDep, ServicesDep
from api.errors import error_responses
from api.models.common import Empty, ModelName
from api.models.registry_webhooks import (
    CreateWebhook,
    RegistryWebhook,
    TestWebhook,
    TestWebhookResponse,
    UpdateWebhook,
    WebhookId,
    WebhookList,
    WebhookResponse,
)
from api.services.errors import Invalid, NotFound
from api.services.permissions import require_permission
from api.services.registry_webhooks import (
    check_events_scope,
    check_receiver_url,
    encrypt,
    may_view,
    require_level,
    secret_box,
    visible_webhook,
)
from policies import PermissionLevel
from workflows.domain import now_ms
from workflows.webhooks.delivery import GONE, STATE_FOR, attempt_record, send_once
from workflows.webhooks.events import ALL_EVENTS

router = APIRouter(
    prefix="/api/2.0/mlflow/registry-webhooks",
    tags=["registry-webhooks"],
    responses=error_responses(400, 401, 403, 404),
)

TEST_TEXT = "This is a test webhook message from Signoff."


@router.post("/create")
async def create_webhook(
    body: CreateWebhook, principal: PrincipalDep, services: ServicesDep
) -> WebhookResponse:
    require_level(services, principal, body.model_name, body.status)
    check_events_scope(body.events, body.model_name)
    await check_receiver_url(services, body.http_url_spec.url)
    box = secret_box(services)
    spec = body.http_url_spec
    now = now_ms()
    row = await services.ledger.webhooks.add(
        webhook_id=uuid.uuid4().hex,
        model_name=body.model_name,
        events=body.events,
        description=body.description,
        status=body.status,
        url=spec.url,
        enable_ssl_verification=spec.enable_ssl_verification is not False,
        secret_enc=encrypt(box, spec.secret),
        authorization_enc=encrypt(box, spec.authorization),
        created_by=principal.sub,
        now_ms=now,
    )
    return WebhookResponse(webhook=RegistryWebhook.of(row))


@router.get("/list")
async def list_webhooks(
    principal: PrincipalDep,
    services: ServicesDep,
    model_name: Annotated[ModelName | None, Query()] = None,
    events: Annotated[list[str] | None, Query()] = None,
    max_results: Annotated[int | None, Query(ge=1)] = None,
    page_token: Annotated[str | None, Query()] = None,
) -> WebhookList:
    """The webhooks the caller may see (all of them on one page), optionally of one model
    and/or subscribed to any of `events`."""
    if model_name is not None:
        require_permission(services, principal, model_name, PermissionLevel.CAN_EDIT)
    rows = await services.ledger.webhooks.search(model_name=model_name)
    wanted = set(events or [])
    visible = [
        row
        for row in rows
        if may_view(services, principal, row) and (not wanted or wanted & set(row.events or []))
    ]
    return WebhookList(webhooks=[RegistryWebhook.of(row) for row in visible])


@router.patch("/update")
async def update_webhook(
    body: UpdateWebhook, principal: PrincipalDep, services: ServicesDep
) -> WebhookResponse:
    row = await visible_webhook(services, principal, body.id)
    require_level(services, principal, row.model_name, row.status)
    changes: dict[str, Any] = {}
    if body.status is not None:
        require_level(services, principal, row.model_name, body.status)
        changes["status"] = body.status
    if body.events is not None:
        check_events_scope(body.events, row.model_name)
        changes["events"] = body.events
    if "description" in body.model_fields_set:
        changes["description"] = body.description
    spec = body.http_url_spec
    if spec is not None:
        await check_receiver_url(services, spec.url)
        changes["url"] = spec.url
        box = secret_box(services)
        if spec.secret is not None:
            changes["secret_enc"] = encrypt(box, spec.secret)
        if spec.authorization is not None:
            changes["authorization_enc"] = encrypt(box, spec.authorization)
        if spec.enable_ssl_verification is not None:
            changes["enable_ssl_verification"] = spec.enable_ssl_verification
    updated = await services.ledger.webhooks.update(webhook_id=body.id, now_ms=now_ms(), **changes)
    if updated is None:
        raise NotFound(f"no registry webhook with id {body.id!r}")
    return WebhookResponse(webhook=RegistryWebhook.of(updated))


@router.delete("/delete")
async def delete_webhook(
    id: Annotated[WebhookId, Query()],
    principal: PrincipalDep,
    services: ServicesDep,
) -> Empty:
    row = await visible_webhook(services, principal, id)
    require_level(services, principal, row.model_name, row.status)
    if not await services.ledger.webhooks.delete(webhook_id=id):
        raise NotFound(f"no registry webhook with id {id!r}")
    return Empty()


@router.post("/test")
async def test_webhook(
    body: TestWebhook, principal: PrincipalDep, services: ServicesDep
) -> TestWebhookResponse:
    """Send one test event now (to an ACTIVE or TEST_MODE webhook: a DISABLED one sends
    nothing at all) and answer with the receiver's status code and body. The attempt is
    recorded like any delivery."""
    row = await visible_webhook(services, principal, body.id)
    require_level(services, principal, row.model_name, row.status)
    if row.status == "DISABLED":
        raise Invalid(
            f"webhook {row.id!r} is DISABLED and sends nothing, tests included; set it "
            "TEST_MODE (or ACTIVE) with registry-webhooks/update first"
        )
    event = body.event or (row.events or [ALL_EVENTS[0]])[0]
    now = now_ms()
    payload: dict[str, Any] = {
        "event": event,
        "webhook_id": row.id,
        "event_timestamp": now,
        "text": TEST_TEXT,
    }
    if row.model_name is not None:
        payload["model_name"] = row.model_name
    delivery_id = uuid.uuid4().hex
    await services.ledger.webhooks.add_delivery(
        delivery_id=delivery_id,
        webhook_id=row.id,
        event=event,
        payload=payload,
        now_ms=now,
    )
    sent = await send_once(
        row,
        delivery_id,
        payload,
        box=secret_box(services),
        allow_hosts=services.settings.webhook_allow_hosts,
    )
    await services.ledger.webhooks.record_attempt(
        delivery_id=delivery_id,
        attempt=attempt_record(1, now, sent),
        state=STATE_FOR[sent.outcome] if sent.outcome != "RETRY" else "FAILED",
        now_ms=now_ms(),
    )
    if sent.outcome == GONE:
        await services.ledger.webhooks.update(webhook_id=row.id, now_ms=now_ms(), status="DISABLED")
    if sent.status_code is None:
        raise Invalid(f"the test delivery to {row.url!r} failed: {sent.error}")
    return TestWebhookResponse(status_code=sent.status_code, body=sent.body or None)
