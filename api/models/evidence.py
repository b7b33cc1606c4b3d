"""The evidence packet: one document per request (or break-glass move) for an auditor, from
`GET /api/2.0/signoff/transition-requests/evidence`. Its JSON Schema is published at
`docs/schemas/evidence.schema.json`; regenerate it after changing these models with
`python -m api.models.evidence > docs/schemas/evidence.schema.json`.

Timestamps are epoch milliseconds. A section Signoff did not record for this subject is null,
and `notes` says why (`{"artifact_digest": "not recorded"}`).
"""

from __future__ import annotations

import json
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from workflows.domain import ReviewState

SCHEMA_ID = "https://signoff.dev/schemas/evidence/v1.json"
NOT_RECORDED = "not recorded"


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class EvidenceSubject(_Section):
    """What the packet is about: a transition request, or a break-glass move."""

    kind: Literal["transition_request", "break_glass"]
    id: str
    model: str
    version: str
    target: str
    from_stage: str | None
    state: str = Field(description="The request's state; APPLIED for a break-glass move.")
    reason: str | None = None
    requester: str = Field(description="Who asked (for break-glass: who moved it).")
    comment: str | None = None
    created_timestamp: int
    updated_timestamp: int


class EvidenceModelVersion(_Section):
    """The version as MLflow has it when the packet is made (None fields: MLflow unreachable)."""

    name: str
    version: str
    source: str | None = None
    run_id: str | None = None
    current_stage: str | None = None
    aliases: list[str] = Field(default_factory=list)
    version_url: str | None = None
    run_url: str | None = None


class EvidencePolicy(_Section):
    """The policy the request pinned: its hash, and its text when the ledger keeps it."""

    hash: str
    text: str | None = Field(None, description="The pinned policy, as YAML.")
    document: dict[str, Any] | None = Field(None, description="The document the hash covers.")
    hash_verified: bool | None = Field(
        None, description="The hash recomputed from `document` equals `hash`."
    )
    is_current: bool = Field(description="The running policy is this one.")


class EvidenceRule(_Section):
    """The rule that applied, in words and as written."""

    index: int | None = Field(description="Position in the pinned policy's `transitions`.")
    label: str
    words: str
    parts: list[str]
    approver_roles: list[str]
    quorum: int
    self_approval: bool
    expires_after: str
    checks: list[str]


class EvidenceCheck(_Section):
    check_id: str
    type: str
    status: str
    requirement: str | None = Field(None, description="What the rule asks, in words.")
    summary: str
    evidence: dict[str, Any] = Field(
        description="What the check saw: metric values and thresholds, the champion compared "
        "with, a CI run's URL and conclusion."
    )
    finished_timestamp: int | None


class EvidenceDecision(_Section):
    kind: Literal["approval", "rejection", "cancellation"]
    user_id: str
    roles: list[str] = Field(description="The roles in which they decided, as held then.")
    timestamp: int
    comment: str | None


class EvidenceComment(_Section):
    id: str
    user_id: str
    comment: str
    created_timestamp: int
    updated_timestamp: int


class EvidenceEntry(_Section):
    """One audit entry, as `activities/list` shows it."""

    id: str
    activity_type: str
    user_id: str
    roles: list[str]
    from_stage: str | None
    to_stage: str | None
    comment: str | None
    system_comment: str | None
    timestamp: int


class EvidenceAcknowledgement(_Section):
    user_id: str
    roles: list[str]
    comment: str | None
    timestamp: int


class EvidenceReview(_Section):
    """The after-the-fact review of a break-glass move."""

    id: str
    state: ReviewState
    roles: list[str]
    quorum: int
    opened_timestamp: int
    deadline_timestamp: int
    overdue_timestamp: int | None
    acknowledged_timestamp: int | None
    acknowledgements: list[EvidenceAcknowledgement]


class EvidencePacket(_Section):
    """Everything on the record about one promotion, for a reviewer or an auditor."""

    schema_id: Literal["https://signoff.dev/schemas/evidence/v1.json"] = Field(
        SCHEMA_ID, alias="$schema"
    )
    generated_timestamp: int
    generated_by: str
    subject: EvidenceSubject
    model_version: EvidenceModelVersion
    artifact_digest: dict[str, Any] | None = Field(
        None, description="The digest of the version's artifacts pinned at request time."
    )
    rule: EvidenceRule | None = Field(description="None: the pinned policy is not on record.")
    policy: EvidencePolicy
    checks: list[EvidenceCheck]
    decisions: list[EvidenceDecision]
    comments: list[EvidenceComment]
    trail: list[EvidenceEntry]
    break_glass_review: EvidenceReview | None = None
    audit_chain_head: dict[str, Any] | None = Field(
        None, description="The audit chain's hash of the subject's last entry."
    )
    notes: dict[str, str] = Field(
        default_factory=dict, description="Why a section is missing or partial, by section."
    )

    model_config = ConfigDict(extra="forbid", populate_by_name=True)


def evidence_json_schema() -> dict[str, Any]:
    """The published JSON Schema of the packet (draft 2020-12), as serialized."""
    schema = EvidencePacket.model_json_schema(mode="serialization", by_alias=True)
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", "$id": SCHEMA_ID} | schema


if __name__ == "__main__":
    print(json.dumps(evidence_json_schema(), indent=2, ensure_ascii=False))
