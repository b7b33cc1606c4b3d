"""Registry webhook events, their payloads, and `announce`: the one call that fans an event
out to the subscribed webhooks.

Payloads follow Databricks' registry webhooks: `event`, `webhook_id`, `event_timestamp` (ms),
`model_name`, `version`, `from_stage`, `to_stage`, `comment`, `text`, plus Signoff's
`request_id` and `request_url` (the transition request and a link to its page, when there is
one). Fields that do not apply
to an event are omitted.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
from typing import Any

from pydantic import BaseModel, Field
from temporalio import activity
from temporalio.client import Client
from temporalio.common import WorkflowIDReusePolicy
from temporalio.exceptions import ApplicationError, WorkflowAlreadyStartedError

from workflows.domain import now_ms
from workflows.errors import UNKNOWN_EVENT
from workflows.ledger import AuditAnchor, Ledger
from workflows.webhooks.delivery import WebhookDeliveryWorkflow, delivery_workflow_id

log = logging.getLogger(__name__)

DATABRICKS_EVENTS = (
    "MODEL_VERSION_CREATED",
    "MODEL_VERSION_TRANSITIONED_STAGE",
    "TRANSITION_REQUEST_CREATED",
    "COMMENT_CREATED",
    "REGISTERED_MODEL_CREATED",
    "MODEL_VERSION_TAG_SET",
    "MODEL_VERSION_TRANSITIONED_TO_STAGING",
    "MODEL_VERSION_TRANSITIONED_TO_PRODUCTION",
    "MODEL_VERSION_TRANSITIONED_TO_ARCHIVED",
    "TRANSITION_REQUEST_TO_STAGING_CREATED",
    "TRANSITION_REQUEST_TO_PRODUCTION_CREATED",
    "TRANSITION_REQUEST_TO_ARCHIVED_CREATED",
)
SIGNOFF_EVENTS = (
    "TRANSITION_REQUEST_APPROVED",
    "TRANSITION_REQUEST_REJECTED",
    "TRANSITION_REQUEST_CANCELLED",
    "TRANSITION_REQUEST_EXPIRED",
    "TRANSITION_REQUEST_FAILED",
    "TRANSITION_REQUEST_SCHEDULED",
    "VALIDATION_CHECK_FAILED",
    "OUT_OF_BAND_CHANGE",
    "AUDIT_ANCHOR",
    "BREAK_GLASS_REVIEW_OPENED",
    "BREAK_GLASS_REVIEW_OVERDUE",
    "BREAK_GLASS_REVIEWED",
)
ALL_EVENTS = DATABRICKS_EVENTS + SIGNOFF_EVENTS
REGISTRY_WIDE_ONLY = frozenset({"REGISTERED_MODEL_CREATED", "AUDIT_ANCHOR"})
"""Events only a webhook without `model_name` may subscribe (Databricks' rule for the first;
an audit anchor belongs to no model)."""


class WebhookEvent(BaseModel):
    """One thing that happened, to be announced to webhooks. `event_id` must be unique per
    occurrence and stable across retries (e.g. the audit entry's id): it makes announcing
    idempotent."""

    event_id: str = Field(min_length=1, max_length=200)
    event: str
    model_name: str | None = None
    version: str | None = None
    from_stage: str | None = None
    to_stage: str | None = None
    comment: str | None = None
    text: str | None = None
    request_id: str | None = None
    request_url: str | None = None
    chain_length: int | None = None
    """AUDIT_ANCHOR: how many entries the audit chain held."""
    head_hash: str | None = None
    """AUDIT_ANCHOR: the hash of the chain's last entry then."""
    rollback: bool | None = None
    """Set on the events of a governed rollback (Signoff's)."""
    apply_at: int | None = None
    """On TRANSITION_REQUEST_SCHEDULED: when it applies, epoch ms (Signoff's)."""
    review_id: str | None = None
    """A break-glass review's id (its move's audit entry id), on the review's events."""
    event_timestamp: int
    """Epoch ms of what happened; required, since events are also built in workflow code."""


_STAGE_SUFFIX = {"Staging": "STAGING", "Production": "PRODUCTION", "Archived": "ARCHIVED"}


def transition_events(
    event_id: str,
    *,
    model: str,
    version: str,
    to_stage: str,
    event_timestamp: int,
    **fields: Any,
) -> list[WebhookEvent]:
    """A version moved: `MODEL_VERSION_TRANSITIONED_STAGE`, plus the stage's own event
    (`..._TO_STAGING` etc.). An alias target (`@champion`) fires the first only."""
    names = ["MODEL_VERSION_TRANSITIONED_STAGE"]
    if to_stage in _STAGE_SUFFIX:
        names.append(f"MODEL_VERSION_TRANSITIONED_TO_{_STAGE_SUFFIX[to_stage]}")
    return _events(
        names,
        event_id,
        model_name=model,
        version=version,
        to_stage=to_stage,
        event_timestamp=event_timestamp,
        **fields,
    )


def request_created_events(
    event_id: str,
    *,
    model: str,
    version: str,
    to_stage: str,
    event_timestamp: int,
    **fields: Any,
) -> list[WebhookEvent]:
    """A transition request was opened: `TRANSITION_REQUEST_CREATED`, plus the stage's own."""
    names = ["TRANSITION_REQUEST_CREATED"]
    if to_stage in _STAGE_SUFFIX:
        names.append(f"TRANSITION_REQUEST_TO_{_STAGE_SUFFIX[to_stage]}_CREATED")
    return _events(
        names,
        event_id,
        model_name=model,
        version=version,
        to_stage=to_stage,
        event_timestamp=event_timestamp,
        **fields,
    )


def comment_event(
    comment_id: str, *, model: str, version: str, user_id: str, text: str, created_ms: int
) -> WebhookEvent:
    """`COMMENT_CREATED` for one comment, as posted."""
    return WebhookEvent(
        event_id=f"comment/{comment_id}",
        event="COMMENT_CREATED",
        model_name=model,
        version=version,
        comment=text,
        text=f"{user_id} commented on version {version} of {model}",
        event_timestamp=created_ms,
    )


def anchor_event(anchor: AuditAnchor) -> WebhookEvent:
    """`AUDIT_ANCHOR`: the audit chain's head at one time; a copy kept elsewhere pins the
    history up to it (`signoff audit verify --anchor LENGTH:HASH`)."""
    return WebhookEvent(
        event_id=f"audit-anchor/{anchor.length}",
        event="AUDIT_ANCHOR",
        text=f"audit chain anchor: {anchor.length} entries, head {anchor.head_hash}",
        chain_length=anchor.length,
        head_hash=anchor.head_hash,
        event_timestamp=anchor.anchored_ms,
    )


def _events(names: list[str], event_id: str, **fields: Any) -> list[WebhookEvent]:
    """One event per name; each event id is `event_id` and the name, stable across retries."""
    return [WebhookEvent(event_id=f"{event_id}/{name}", event=name, **fields) for name in names]


def payload_for(event: WebhookEvent, webhook_id: str) -> dict[str, Any]:
    body: dict[str, Any] = {
        "event": event.event,
        "webhook_id": webhook_id,
        "event_timestamp": event.event_timestamp,
    }
    for name in (
        "model_name",
        "version",
        "from_stage",
        "to_stage",
        "comment",
        "text",
        "request_id",
        "request_url",
        "chain_length",
        "head_hash",
        "rollback",
        "apply_at",
        "review_id",
    ):
        value = getattr(event, name)
        if value is not None:
            body[name] = value
    return body


def delivery_id_for(event_id: str, webhook_id: str) -> str:
    return hashlib.sha256(f"{event_id}\x00{webhook_id}".encode()).hexdigest()[:32]


async def start_delivery(client: Client, task_queue: str, delivery_id: str) -> None:
    """Start the delivery's workflow; nothing if it already runs or ran."""
    with contextlib.suppress(WorkflowAlreadyStartedError):
        await client.start_workflow(
            WebhookDeliveryWorkflow.run,
            delivery_id,
            id=delivery_workflow_id(delivery_id),
            task_queue=task_queue,
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
        )


async def announce_all(
    client: Client, ledger: Ledger, task_queue: str, events: list[WebhookEvent]
) -> list[str]:
    """`announce` each event; the delivery ids of all."""
    ids: list[str] = []
    for event in events:
        ids.extend(await announce(client, ledger, task_queue, event))
    return ids


async def announce(
    client: Client, ledger: Ledger, task_queue: str, event: WebhookEvent
) -> list[str]:
    """Fan `event` out: one durable delivery per ACTIVE webhook subscribed to it (the model's
    own and the registry-wide ones). Idempotent: the delivery id, and its workflow id, derive
    from the event id and the webhook id. Returns the delivery ids. Never waits for a
    receiver, so it can sit on any path."""
    if event.event not in ALL_EVENTS:
        raise ValueError(f"unknown webhook event {event.event!r}")
    hooks = await ledger.webhooks.matching(event.event, event.model_name, event.event_timestamp)
    now = now_ms()
    ids: list[str] = []
    for hook in hooks:
        delivery_id = delivery_id_for(event.event_id, hook.id)
        await ledger.webhooks.add_delivery(
            delivery_id=delivery_id,
            webhook_id=hook.id,
            event=event.event,
            payload=payload_for(event, hook.id),
            now_ms=now,
        )
        await start_delivery(client, task_queue, delivery_id)
        ids.append(delivery_id)
    return ids


class AnnounceActivities:
    """`announce_webhooks`: `announce` as an activity, for workflows (the worker's own client
    starts the deliveries). It also links each event to its request's page."""

    def __init__(self, ledger: Ledger, task_queue: str, public_url: str | None = None) -> None:
        self.ledger = ledger
        self.task_queue = task_queue
        self.public_url = public_url

    @activity.defn
    async def announce_webhooks(self, events: list[WebhookEvent]) -> list[str]:
        unknown = sorted({event.event for event in events} - set(ALL_EVENTS))
        if unknown:
            raise ApplicationError(
                f"unknown webhook event(s) {', '.join(unknown)}",
                type=UNKNOWN_EVENT,
                non_retryable=True,
            )
        linked = [with_request_link(event, self.public_url) for event in events]
        return await announce_all(activity.client(), self.ledger, self.task_queue, linked)


def with_request_link(event: WebhookEvent, public_url: str | None) -> WebhookEvent:
    """The event with `request_url`: its request's page on the web UI, when it has one."""
    if event.request_url or not event.request_id or not public_url:
        return event
    url = request_page_url(public_url, event.request_id)
    return event.model_copy(update={"request_url": url})


def request_page_url(public_url: str, request_id: str) -> str:
    """The request's page on the web UI."""
    return f"{public_url.rstrip('/')}/ui/requests/{request_id}"
