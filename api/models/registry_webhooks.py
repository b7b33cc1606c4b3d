"""Registry webhooks on the wire: Databricks' `RegistryWebhook` and its bodies, and Signoff's
deliveries (each with every attempt)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator

from api.models.common import ModelName, omitted
from workflows.ledger import DeliveryAttempt as AttemptRecord
from workflows.ledger import Webhook, WebhookDelivery
from workflows.webhooks.events import ALL_EVENTS

MAX_URL = 2048
MAX_DESCRIPTION = 4096

Status = Literal["ACTIVE", "TEST_MODE", "DISABLED"]
Event = Annotated[str, Field(json_schema_extra={"enum": list(ALL_EVENTS)})]
WebhookId = Annotated[str, Field(min_length=1, max_length=64)]
URL_PATTERN = r"^https?://\S+$"
"""What the receiver URL check (`workflows.webhooks.ssrf`) accepts at all; whether the host may
be reached (it resolves, to public addresses or allowed ones) is decided when it is given."""


def _no_job(value: Any) -> None:
    if value is not None:
        raise ValueError("job_spec webhooks are not supported by Signoff; use http_url_spec")
    return None


JobSpec = Annotated[
    None,
    BeforeValidator(_no_job),
    Field(description="Databricks' job webhooks: Signoff has none, so only null is accepted."),
]


# -- requests ----------------------------------------------------------------------------------


class HttpUrlSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str = Field(
        min_length=1,
        max_length=MAX_URL,
        pattern=URL_PATTERN,
        description="An http(s) URL whose host resolves to public addresses (or is listed in "
        "SIGNOFF_WEBHOOK_ALLOW_HOSTS); checked when given, 400 otherwise.",
    )
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

    events: list[Event] = Field(
        min_length=1,
        description="The events to send. REGISTERED_MODEL_CREATED is registry-wide only: with a "
        "model_name it is refused (400).",
    )
    model_name: ModelName | None = None
    description: str | None = Field(None, max_length=MAX_DESCRIPTION)
    status: Status = "ACTIVE"
    http_url_spec: HttpUrlSpec = Field(description="Where to send the events (required).")
    job_spec: JobSpec = None

    _events = field_validator("events")(_check_events)


class UpdateWebhook(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: WebhookId
    events: list[Event] | None = Field(None, min_length=1)
    description: str | None = Field(None, max_length=MAX_DESCRIPTION)
    status: Status | None = None
    http_url_spec: HttpUrlSpec | None = None
    job_spec: JobSpec = None

    _events = field_validator("events")(_check_events)


class TestWebhook(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: WebhookId
    event: Event | None = None

    @field_validator("event")
    @classmethod
    def _known(cls, value: str | None) -> str | None:
        if value is not None and value not in ALL_EVENTS:
            raise ValueError(f"unknown event {value!r}; valid: {', '.join(ALL_EVENTS)}")
        return value


class Redeliver(BaseModel):
    model_config = ConfigDict(extra="forbid")

    delivery_id: str = Field(min_length=1, max_length=64)


# -- responses ---------------------------------------------------------------------------------


class HttpUrlSpecWithoutSecret(BaseModel):
    """The secret and the authorization header are stored encrypted and never returned."""

    url: str
    enable_ssl_verification: bool


class RegistryWebhook(BaseModel):
    id: str
    creation_timestamp: int = Field(description="Epoch milliseconds.")
    last_updated_timestamp: int = Field(description="Epoch milliseconds.")
    events: list[Event]
    status: Status
    http_url_spec: HttpUrlSpecWithoutSecret
    model_name: str | None = omitted("Absent for a registry-wide webhook.")
    description: str | None = omitted()

    @classmethod
    def of(cls, row: Webhook) -> RegistryWebhook:
        return cls(
            id=row.id,
            creation_timestamp=row.created_ms,
            last_updated_timestamp=row.updated_ms,
            events=list(row.events or []),
            status=row.status,  # type: ignore[arg-type]  # the ledger stores one of them
            http_url_spec=HttpUrlSpecWithoutSecret(
                url=row.url, enable_ssl_verification=row.enable_ssl_verification
            ),
            model_name=row.model_name,
            description=row.description,
        )


class WebhookResponse(BaseModel):
    """`{"webhook": ...}`."""

    webhook: RegistryWebhook


class WebhookList(BaseModel):
    """Every webhook the caller may see, on one page."""

    webhooks: list[RegistryWebhook]


class TestWebhookResponse(BaseModel):
    """What the receiver answered to the test event."""

    status_code: int
    body: str | None = omitted("The receiver's body, when it sent one.")


class DeliveryAttempt(BaseModel):
    attempt: int
    timestamp: int = Field(description="Epoch milliseconds.")
    status_code: int | None = Field(description="Null when no answer came.")
    latency_ms: int | None
    error: str | None

    @classmethod
    def of(cls, attempt: AttemptRecord) -> DeliveryAttempt:
        return cls(
            attempt=attempt.attempt,
            timestamp=attempt.time_ms,
            status_code=attempt.status_code,
            latency_ms=attempt.latency_ms,
            error=attempt.error,
        )


class Delivery(BaseModel):
    """One event sent (or being sent) to one webhook, with every attempt."""

    id: str
    webhook_id: str
    event: str
    state: str
    creation_timestamp: int = Field(description="Epoch milliseconds.")
    last_updated_timestamp: int = Field(description="Epoch milliseconds.")
    payload: dict[str, Any]
    attempts: list[DeliveryAttempt]

    @classmethod
    def of(cls, row: WebhookDelivery) -> Delivery:
        return cls(
            id=row.id,
            webhook_id=row.webhook_id,
            event=row.event,
            state=row.state,
            creation_timestamp=row.created_ms,
            last_updated_timestamp=row.updated_ms,
            payload=row.payload,
            attempts=[DeliveryAttempt.of(attempt) for attempt in row.attempts or []],
        )


class DeliveryList(BaseModel):
    """A webhook's deliveries, newest first."""

    deliveries: list[Delivery]


class DeliveryResponse(BaseModel):
    """`{"delivery": ...}`: the new delivery a redelivery started."""

    delivery: Delivery
