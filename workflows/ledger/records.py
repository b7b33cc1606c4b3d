"""What the ledger keeps besides requests and their audit entries (those are the shared
vocabulary, `workflows.domain`): comments, webhook subscriptions and their deliveries, inbound
webhooks, registry marks and reconciler runs. The repositories return these models, never
table rows; field names are the columns', so each maps with `model_validate(row,
from_attributes=True)`. They are the ledger's own records, hence here and not in
`workflows.domain`.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator


class _Record(BaseModel):
    model_config = ConfigDict(from_attributes=True, frozen=True)


def _empty_if_null(value: Any) -> Any:
    """A JSON column written before it had a default may hold NULL: read it as empty."""
    return value if value is not None else []


class Comment(_Record):
    """Discussion on a model version (its current text; the NEW_COMMENT audit entry keeps the
    text as first posted)."""

    id: str
    model_name: str
    version: str
    user_id: str
    comment: str
    created_ms: int
    updated_ms: int


class Webhook(_Record):
    """A registry webhook subscription. `secret_enc` and `authorization_enc` are Fernet tokens
    (SIGNOFF_ENCRYPTION_KEY), never the plaintext, and are left out of `repr`."""

    id: str
    model_name: str | None = None
    events: list[str] = Field(default_factory=list)
    description: str | None = None
    status: str
    url: str
    enable_ssl_verification: bool = True
    secret_enc: str | None = Field(default=None, repr=False)
    authorization_enc: str | None = Field(default=None, repr=False)
    created_by: str
    created_ms: int
    updated_ms: int

    _events = field_validator("events", mode="before")(_empty_if_null)


WEBHOOK_CHANGEABLE = frozenset(
    {
        "events",
        "description",
        "status",
        "url",
        "enable_ssl_verification",
        "secret_enc",
        "authorization_enc",
    }
)
"""The fields `WebhookRepository.update` may change."""


class DeliveryAttempt(_Record):
    """One HTTP attempt of a delivery; `attempt` (1-based) is its idempotency key."""

    attempt: int
    time_ms: int
    status_code: int | None = None
    latency_ms: int | None = None
    error: str | None = None


class WebhookDelivery(_Record):
    """One event sent (or being sent) to one webhook, with every attempt, oldest first.
    States: PENDING, RETRYING, DELIVERED, FAILED, GONE, SKIPPED."""

    id: str
    webhook_id: str
    event: str
    payload: dict[str, Any] = Field(default_factory=dict)
    state: str
    attempts: list[DeliveryAttempt] = Field(default_factory=list)
    created_ms: int
    updated_ms: int

    _attempts = field_validator("attempts", mode="before")(_empty_if_null)

    @field_validator("payload", mode="before")
    @classmethod
    def _payload(cls, value: Any) -> Any:
        return value if value is not None else {}


class SlackAttempt(_Record):
    """One call to Slack for a request's message. `key` (the updater's run and step) makes
    recording it idempotent; `attempt` numbers the message's attempts, 1-based, oldest first."""

    attempt: int = 0
    key: str
    method: str = Field(description="chat.postMessage or chat.update")
    revision: int = Field(description="The revision of the request the call showed.")
    time_ms: int
    status_code: int | None = None
    latency_ms: int | None = None
    error: str | None = None


class SlackMessage(_Record):
    """The Slack message that follows one request. States: PENDING (not posted yet), POSTED
    (shows `sent_revision`), RETRYING, FAILED."""

    request_id: str
    channel: str
    channel_id: str | None = None
    ts: str | None = None
    state: str
    sent_revision: int | None = None
    attempts: list[SlackAttempt] = Field(default_factory=list)
    created_ms: int
    updated_ms: int

    _attempts = field_validator("attempts", mode="before")(_empty_if_null)


class InboundHook(_Record):
    """One webhook Signoff received: accepted or refused, and why. `claim`
    ("<source>/<message id>") is set only on a verified message while it holds its id."""

    id: str
    source: str
    message_id: str | None = None
    claim: str | None = None
    outcome: str
    reason: str | None = None
    event: str | None = None
    user_id: str | None = None
    request_id: str | None = None
    received_ms: int


class RegistryMark(_Record):
    """What Signoff expects MLflow to show for one version: its stage and aliases, plus the
    transition Signoff is applying to it (`pending_*`), if any."""

    model_name: str
    version: str
    stage: str = "None"
    aliases: list[str] = Field(default_factory=list)
    pending_request: str | None = None
    pending_target: str | None = None
    pending_ms: int | None = None
    updated_ms: int

    _aliases = field_validator("aliases", mode="before")(_empty_if_null)


class ReconcilerRun(_Record):
    """One pass of the reconciler."""

    id: str
    started_ms: int
    finished_ms: int
    versions: int = 0
    changes: int = 0
    baseline: bool = False


class ChainedEntry(_Record):
    """An audit entry with its place in the audit chain and its hashes, as stored (field names
    are the chain's canonical ones, `workflows.ledger.chain.CONTENT_FIELDS`)."""

    chain_seq: int
    recorded_ms: int
    id: str
    request_id: str | None
    seq: int
    model: str
    version: str
    activity_type: str
    user_id: str
    from_stage: str | None
    to_stage: str | None
    comment: str | None
    system_comment: str | None
    creation_timestamp: int
    roles: list[str] | None
    prev_hash: str
    entry_hash: str


class AuditAnchor(_Record):
    """The audit chain's head at one time: `length` entries, the last one hashed `head_hash`."""

    length: int
    head_hash: str
    anchored_ms: int


class ExportRange(_Record):
    """The run of the chain an export covers: entries `after_seq + 1` .. `last_seq`, the first
    following the entry hashed `start_hash`; and the whole chain's length and head then."""

    after_seq: int
    last_seq: int
    start_hash: str
    chain_length: int
    chain_head: str


class DeploymentGate(_Record):
    """A GitHub deployment waiting on Signoff, and the answer it got (`ledger.deployment_gates`).
    `state`: WAITING, then APPROVED or REJECTED (FAILED: GitHub refused the answer)."""

    id: str
    gate_id: str
    repository: str
    repository_id: str
    run_id: str
    environment: str
    state: str
    comment: str | None = None
    request_ids: list[str] = Field(default_factory=list)
    status_code: int | None = None
    attempts: int = 0
    created_ms: int
    updated_ms: int

    _requests = field_validator("request_ids", mode="before")(_empty_if_null)
