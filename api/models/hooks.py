"""Inbound webhooks on the wire: a chat or ticket tool's decision, MLflow's own events (their
answers), and the record of every inbound message."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator

from api.models.common import Comment, ModelName, Target, Version, omitted


def _decision(value: Any) -> Any:
    """Tools write `Approve`, `APPROVE`, ...; the meaning is the same."""
    return value.strip().lower() if isinstance(value, str) else value


class DecisionHook(BaseModel):
    """The body a tool sends. Extra fields are ignored, not refused: chat and ticket tools add
    their own (channel, ticket key, ...) and the signature already vouches for the body."""

    model_config = ConfigDict(extra="ignore")

    decision: Annotated[Literal["approve", "reject"], BeforeValidator(_decision)]
    user: str = Field(min_length=1, max_length=256, description="The tool's id of the actor.")
    comment: Comment = None
    request_id: str | None = Field(None, min_length=1, max_length=64)
    name: ModelName | None = None
    version: Version | None = None
    stage: Target | None = None

    @model_validator(mode="after")
    def _names_one_request(self) -> DecisionHook:
        target = (self.name, self.version, self.stage)
        if self.request_id is not None:
            if any(part is not None for part in target):
                raise ValueError("give either request_id or name, version and stage, not both")
        elif any(part is None for part in target):
            raise ValueError("name the request: request_id, or name, version and stage")
        return self


class MlflowHookOutcome(BaseModel):
    """What Signoff made of one MLflow webhook delivery."""

    event: str = Field(description="MLflow's `<entity>.<action>`.")
    outcome: Literal["ACCEPTED", "IGNORED"]
    opened_requests: list[str] | None = omitted("Requests a new version opened (auto_request).")
    made_by_signoff: bool | None = omitted("The change was Signoff's own: nothing recorded.")
    out_of_band: str | None = omitted("The audit entry recording an out-of-band change.")


class InboundMessage(BaseModel):
    """One inbound webhook message and how it ended."""

    id: str
    source: str
    message_id: str | None
    outcome: str = Field(description="ACCEPTED, IGNORED, REFUSED, ERROR or PROCESSING.")
    reason: str | None
    event: str | None
    user_id: str | None
    request_id: str | None
    received_timestamp: int = Field(description="Epoch milliseconds.")


class InboundMessageList(BaseModel):
    """Every inbound message, newest first."""

    messages: list[InboundMessage]
