"""Registry webhooks: Databricks' `/api/2.0/mlflow/registry-webhooks/{create,list,update,
delete,test}` and Signoff's deliveries list and redelivery.

Who may do what (DESIGN.md): a model-level webhook in `TEST_MODE` (or `DISABLED`) needs
`CAN_EDIT` on its model, an `ACTIVE` one `CAN_MANAGE`; a registry-wide webhook (no
`model_name`) needs `CAN_MANAGE` on every model, i.e. a role bound `CAN_MANAGE` on the pattern
`"*"`. Changing or deleting a webhook needs the level of its current status and of the new one.
The secret and the authorization header are stored encrypted and never returned.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict, Field, field_validator

from api.deps import (
    PrincipalDep,
    Services,
    ServicesDep,
    is_registry_admin,
    require_permission,
)
from api.errors import ApiError, bad_request, forbidden, not_found
from policies import PermissionLevel, Principal
from workflows.domain import now_ms
from workflows.ledger.models import WebhookDeliveryRow, WebhookRow
from workflows.webhooks.delivery import (
    GONE,
    STATE_FOR,
    attempt_record,
    send_once,
)
from workflows.webhooks.events import (
    ALL_EVENTS,
    REGISTRY_WIDE_ONLY,
    start_delivery,
)
from workflows.webhooks.signing import EncryptionKeyMissing, SecretBox
from workflows.webhooks.ssrf import UnsafeUrlError, check_url

router = APIRouter(tags=["registry-webhooks"])

MLFLOW_WEBHOOKS = "/api/2.0/mlflow/registry-webhooks"
SIGNOFF_WEBHOOKS = "/api/2.0/signoff/registry-webhooks"
MAX_URL = 2048
MAX_DESCRIPTION = 4096
TEST_TEXT = "This is a test webhook message from Signoff."

Status = Literal["ACTIVE", "TEST_MODE", "DISABLED"]


# -- wire shapes ---------------------------------------------------------------------------


class HttpUrlSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str = Field(min_length=1, max_length=MAX_URL)
    secret: str | None = Field(None, max_length=4096)
    authorization: str | None = Field(None, max_length=8192)
    enable_ssl_verification: bool | None = None


def _check_events(value: list[str] | None) -> list[str] | None:
    if value is None:
        return None
    unknown = [event for event in value if event not in ALL_EVENTS]
    if unknown:
        raise ValueError(f"unknown events {unknown}; valid: {', '.join(ALL_EVENTS)}")
    return list(dict.fromkeys(value))


class CreateWebhook(BaseModel):
    model_config = ConfigDict(extra="forbid")

    events: list[str] = Field(min_length=1)
    model_name: str | None = Field(None, min_length=1, max_length=256)
    description: str | None = Field(None, max_length=MAX_DESCRIPTION)
    status: Status = "ACTIVE"
    http_url_spec: HttpUrlSpec | None = None
    job_spec: dict[str, Any] | None = None

    _events = field_validator("events")(_check_events)


class UpdateWebhook(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str = Field(min_length=1, max_length=64)
    events: list[str] | None = Field(None, min_length=1)
    description: str | None = Field(None, max_length=MAX_DESCRIPTION)
    status: Status | None = None
    http_url_spec: HttpUrlSpec | None = None
    job_spec: dict[str, Any] | None = None

    _events = field_validator("events")(_check_events)


class TestWebhook(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str = Field(min_length=1, max_length=64)
    event: str | None = None

    @field_validator("event")
    @classmethod
    def _known(cls, value: str | None) -> str | None:
        if value is not None and value not in ALL_EVENTS:
            raise ValueError(f"unknown event {value!r}; valid: {', '.join(ALL_EVENTS)}")
        return value


class Redeliver(BaseModel):
    model_config = ConfigDict(extra="forbid")

    delivery_id: str = Field(min_length=1, max_length=64)


def webhook_json(row: WebhookRow) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": row.id,
        "creation_timestamp": row.created_ms,
        "last_updated_timestamp": row.updated_ms,
        "events": list(row.events or []),
        "status": row.status,
        "http_url_spec": {"url": row.url, "enable_ssl_verification": row.enable_ssl_verification},
    }
    if row.model_name is not None:
        body["model_name"] = row.model_name
    if row.description is not None:
        body["description"] = row.description
    return body


def delivery_json(row: WebhookDeliveryRow) -> dict[str, Any]:
    return {
        "id": row.id,
        "webhook_id": row.webhook_id,
        "event": row.event,
        "state": row.state,
        "creation_timestamp": row.created_ms,
        "last_updated_timestamp": row.updated_ms,
        "payload": row.payload,
        "attempts": [
            {
                "attempt": a["attempt"],
                "timestamp": a["time_ms"],
                "status_code": a.get("status_code"),
                "latency_ms": a.get("latency_ms"),
                "error": a.get("error"),
            }
            for a in (row.attempts or [])
        ],
    }


# -- permissions -----------------------------------------------------------------------------


def _level_for(status: str) -> PermissionLevel:
    return PermissionLevel.CAN_MANAGE if status == "ACTIVE" else PermissionLevel.CAN_EDIT


def _require(services: Services, principal: Principal, model_name: str | None, status: str) -> None:
    if model_name is None:
        if not is_registry_admin(services, principal):
            raise forbidden(
                f"{principal.sub} may not manage registry-wide webhooks: that needs CAN_MANAGE "
                'on every model (a role bound CAN_MANAGE on "*"); give a model_name instead'
            )
        return
    require_permission(services, principal, model_name, _level_for(status))


def _may_view(services: Services, principal: Principal, row: WebhookRow) -> bool:
    try:
        _require(services, principal, row.model_name, "TEST_MODE")
    except ApiError:
        return False
    return True


async def _visible(services: Services, principal: Principal, webhook_id: str) -> WebhookRow:
    """The webhook, if the caller may see it (CAN_EDIT on its model, or registry admin for a
    registry-wide one); otherwise the same 404 as a missing one."""
    row = await asyncio.to_thread(services.ledger.get_webhook, webhook_id)
    if row is None or not _may_view(services, principal, row):
        raise not_found(f"no registry webhook with id {webhook_id!r}")
    return row


# -- helpers ------------------------------------------------------------------------------------


def _box(services: Services) -> SecretBox:
    key = services.settings.encryption_key
    return SecretBox(key.get_secret_value() if key else None)


def _encrypt(box: SecretBox, value: str | None) -> str | None:
    try:
        return box.encrypt(value)
    except EncryptionKeyMissing as err:
        raise bad_request(str(err)) from err


async def _check_url(services: Services, url: str) -> None:
    try:
        await asyncio.to_thread(check_url, url, services.settings.webhook_allow_hosts)
    except UnsafeUrlError as err:
        raise bad_request(str(err)) from err


def _check_events_scope(events: list[str], model_name: str | None) -> None:
    if model_name is not None:
        wide = sorted(set(events) & REGISTRY_WIDE_ONLY)
        if wide:
            raise bad_request(
                f"{', '.join(wide)} can only be subscribed by a registry-wide webhook "
                "(one without model_name)"
            )


def _no_job_spec(job_spec: dict[str, Any] | None) -> None:
    if job_spec is not None:
        raise bad_request("job_spec webhooks are not supported by Signoff; use http_url_spec")


# -- routes ---------------------------------------------------------------------------------------


@router.post(f"{MLFLOW_WEBHOOKS}/create")
async def create_webhook(
    body: CreateWebhook, principal: PrincipalDep, services: ServicesDep
) -> dict[str, Any]:
    _no_job_spec(body.job_spec)
    if body.http_url_spec is None:
        raise bad_request("http_url_spec is required (with at least its url)")
    _require(services, principal, body.model_name, body.status)
    _check_events_scope(body.events, body.model_name)
    await _check_url(services, body.http_url_spec.url)
    box = _box(services)
    spec = body.http_url_spec
    now = now_ms()
    row = WebhookRow(
        id=uuid.uuid4().hex,
        model_name=body.model_name,
        events=body.events,
        description=body.description,
        status=body.status,
        url=spec.url,
        enable_ssl_verification=spec.enable_ssl_verification is not False,
        secret_enc=_encrypt(box, spec.secret),
        authorization_enc=_encrypt(box, spec.authorization),
        created_by=principal.sub,
        created_ms=now,
        updated_ms=now,
    )
    await asyncio.to_thread(services.ledger.add_webhook, row)
    return {"webhook": webhook_json(row)}


@router.get(f"{MLFLOW_WEBHOOKS}/list")
async def list_webhooks(
    principal: PrincipalDep,
    services: ServicesDep,
    model_name: Annotated[str | None, Query(max_length=256)] = None,
    events: Annotated[list[str] | None, Query()] = None,
    max_results: Annotated[int | None, Query(ge=1)] = None,
    page_token: Annotated[str | None, Query()] = None,
) -> dict[str, Any]:
    """The webhooks the caller may see (all of them on one page), optionally of one model
    and/or subscribed to any of `events`."""
    if model_name is not None:
        require_permission(services, principal, model_name, PermissionLevel.CAN_EDIT)
    rows = await asyncio.to_thread(services.ledger.list_webhooks, model_name)
    wanted = set(events or [])
    visible = [
        row
        for row in rows
        if _may_view(services, principal, row) and (not wanted or wanted & set(row.events or []))
    ]
    return {"webhooks": [webhook_json(row) for row in visible]}


@router.patch(f"{MLFLOW_WEBHOOKS}/update")
async def update_webhook(
    body: UpdateWebhook, principal: PrincipalDep, services: ServicesDep
) -> dict[str, Any]:
    _no_job_spec(body.job_spec)
    row = await _visible(services, principal, body.id)
    _require(services, principal, row.model_name, row.status)
    changes: dict[str, Any] = {}
    if body.status is not None:
        _require(services, principal, row.model_name, body.status)
        changes["status"] = body.status
    if body.events is not None:
        _check_events_scope(body.events, row.model_name)
        changes["events"] = body.events
    if "description" in body.model_fields_set:
        changes["description"] = body.description
    spec = body.http_url_spec
    if spec is not None:
        await _check_url(services, spec.url)
        changes["url"] = spec.url
        box = _box(services)
        if spec.secret is not None:
            changes["secret_enc"] = _encrypt(box, spec.secret)
        if spec.authorization is not None:
            changes["authorization_enc"] = _encrypt(box, spec.authorization)
        if spec.enable_ssl_verification is not None:
            changes["enable_ssl_verification"] = spec.enable_ssl_verification
    updated = await asyncio.to_thread(services.ledger.update_webhook, body.id, now_ms(), **changes)
    if updated is None:
        raise not_found(f"no registry webhook with id {body.id!r}")
    return {"webhook": webhook_json(updated)}


@router.delete(f"{MLFLOW_WEBHOOKS}/delete")
async def delete_webhook(
    id: Annotated[str, Query(min_length=1, max_length=64)],
    principal: PrincipalDep,
    services: ServicesDep,
) -> dict[str, Any]:
    row = await _visible(services, principal, id)
    _require(services, principal, row.model_name, row.status)
    if not await asyncio.to_thread(services.ledger.delete_webhook, id):
        raise not_found(f"no registry webhook with id {id!r}")
    return {}


@router.post(f"{MLFLOW_WEBHOOKS}/test")
async def test_webhook(
    body: TestWebhook, principal: PrincipalDep, services: ServicesDep
) -> dict[str, Any]:
    """Send one test event now (to an ACTIVE or TEST_MODE webhook: a DISABLED one sends
    nothing at all) and answer with the receiver's status code and body. The attempt is
    recorded like any delivery."""
    row = await _visible(services, principal, body.id)
    _require(services, principal, row.model_name, row.status)
    if row.status == "DISABLED":
        raise bad_request(
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
    await asyncio.to_thread(
        services.ledger.add_delivery,
        delivery_id,
        webhook_id=row.id,
        event=event,
        payload=payload,
        now_ms=now,
    )
    sent = await send_once(
        row,
        delivery_id,
        payload,
        box=_box(services),
        allow_hosts=services.settings.webhook_allow_hosts,
    )
    await asyncio.to_thread(
        services.ledger.record_attempt,
        delivery_id,
        attempt_record(1, now, sent),
        state=STATE_FOR[sent.outcome] if sent.outcome != "RETRY" else "FAILED",
        now_ms=now_ms(),
    )
    if sent.outcome == GONE:
        await asyncio.to_thread(services.ledger.update_webhook, row.id, now_ms(), status="DISABLED")
    if sent.status_code is None:
        raise bad_request(f"the test delivery to {row.url!r} failed: {sent.error}")
    response: dict[str, Any] = {"status_code": sent.status_code}
    if sent.body:
        response["body"] = sent.body
    return response


@router.get(f"{SIGNOFF_WEBHOOKS}/deliveries")
async def list_deliveries(
    id: Annotated[str, Query(min_length=1, max_length=64)],
    principal: PrincipalDep,
    services: ServicesDep,
) -> dict[str, Any]:
    """A webhook's deliveries, newest first, each with every attempt."""
    await _visible(services, principal, id)
    rows = await asyncio.to_thread(services.ledger.list_deliveries, id)
    return {"deliveries": [delivery_json(row) for row in rows]}


@router.post(f"{SIGNOFF_WEBHOOKS}/redeliver")
async def redeliver(
    body: Redeliver, principal: PrincipalDep, services: ServicesDep
) -> dict[str, Any]:
    """Send a past delivery's payload again, as a new durable delivery (new id, fresh
    retries)."""
    original = await asyncio.to_thread(services.ledger.get_delivery, body.delivery_id)
    row = None
    if original is not None:
        row = await asyncio.to_thread(services.ledger.get_webhook, original.webhook_id)
    if original is None or row is None or not _may_view(services, principal, row):
        raise not_found(f"no webhook delivery with id {body.delivery_id!r}")  # the same either way
    _require(services, principal, row.model_name, row.status)
    if row.status == "DISABLED":
        raise bad_request(f"webhook {row.id!r} is DISABLED; set it ACTIVE or TEST_MODE first")
    transitions = await services.transitions()
    delivery_id = uuid.uuid4().hex
    copy = await asyncio.to_thread(
        services.ledger.add_delivery,
        delivery_id,
        webhook_id=row.id,
        event=original.event,
        payload=original.payload,
        now_ms=now_ms(),
    )
    await start_delivery(transitions.client, services.settings.task_queue, delivery_id)
    return {"delivery": delivery_json(copy)}
