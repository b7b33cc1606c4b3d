"""Slack on the wire: the interactivity payloads Signoff acts on (`block_actions` from the
message's buttons, `view_submission` from the reject modal), the acknowledgment it answers,
and the record of a request's Slack message.

Payloads are parsed only after their signature is verified. Fields Signoff does not use are
ignored (Slack sends many); the ones it uses are bounded."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from api.models.common import omitted
from workflows.ledger import SlackAttempt, SlackMessage

SlackId = Annotated[str, Field(min_length=1, max_length=64)]


class _Payload(BaseModel):
    model_config = ConfigDict(extra="ignore")


class SlackUser(_Payload):
    id: SlackId


class SlackAction(_Payload):
    action_id: str = Field(max_length=255)
    value: str | None = Field(None, max_length=2000)


class BlockActions(_Payload):
    """A click on one of the message's buttons."""

    type: Literal["block_actions"]
    user: SlackUser
    actions: list[SlackAction] = Field(min_length=1, max_length=25)
    trigger_id: str | None = Field(None, max_length=256)
    response_url: str | None = Field(None, max_length=2000)


class SlackView(_Payload):
    callback_id: str = Field("", max_length=255)
    private_metadata: str = Field("", max_length=3000)
    state: dict[str, Any] = Field(default_factory=dict)


class ViewSubmission(_Payload):
    """The reject modal, submitted."""

    type: Literal["view_submission"]
    user: SlackUser
    view: SlackView


class OtherInteraction(_Payload):
    """Anything else Slack may send to the interactivity URL (shortcuts, `view_closed`...):
    acknowledged and ignored."""

    type: str = Field(max_length=64)


Interaction = Annotated[BlockActions | ViewSubmission, Field(discriminator="type")]


class SlackAck(BaseModel):
    """Slack's acknowledgment, sent at once: an empty body (Slack's own convention: Signoff then
    tells the person how it went through `response_url`), or, for a modal submitted without
    what it needs, `{"response_action": "errors", "errors": {block_id: message}}`."""

    response_action: Literal["errors"] | None = omitted()
    errors: dict[str, str] | None = omitted()


class SlackMessageAttempt(BaseModel):
    attempt: int
    method: str = Field(description="chat.postMessage or chat.update.")
    revision: int = Field(description="The revision of the request the call showed.")
    time_ms: int
    status_code: int | None
    latency_ms: int | None
    error: str | None

    @classmethod
    def of(cls, attempt: SlackAttempt) -> SlackMessageAttempt:
        return cls.model_validate(attempt.model_dump())


class SlackMessageRecord(BaseModel):
    """The Slack message that follows a request, and every call made for it."""

    request_id: str
    channel: str = Field(description="As the rule names it.")
    channel_id: str | None = Field(description="Slack's id of the channel, once posted.")
    ts: str | None = Field(description="The message's timestamp (its id), once posted.")
    state: str = Field(description="PENDING, POSTED, RETRYING or FAILED.")
    sent_revision: int | None = Field(description="The revision of the request Slack shows.")
    attempts: list[SlackMessageAttempt]

    @classmethod
    def of(cls, message: SlackMessage) -> SlackMessageRecord:
        return cls(
            **message.model_dump(exclude={"attempts", "created_ms", "updated_ms"}),
            attempts=[SlackMessageAttempt.of(attempt) for attempt in message.attempts],
        )


class SlackMessageResponse(BaseModel):
    message: SlackMessageRecord
