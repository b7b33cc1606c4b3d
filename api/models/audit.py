"""The audit export and the audit chain's anchors on the wire."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from workflows.ledger import AuditAnchor

ExportFormat = Literal["jsonl", "csv"]
MAX_EXPORT_MODELS = 100


class Anchor(BaseModel):
    """The audit chain's head at one time. Keep `anchor` elsewhere: `signoff audit verify
    --anchor <anchor>` then proves an export holds that history unaltered."""

    length: int = Field(description="Entries in the chain then; the last one's chain_seq.")
    head_hash: str = Field(description="The entry_hash of the chain's last entry then.")
    anchor_timestamp: int = Field(description="Epoch milliseconds.")
    anchor: str = Field(description="`length:head_hash`, as `signoff audit verify` takes it.")

    @classmethod
    def of(cls, anchor: AuditAnchor) -> Anchor:
        return cls(
            length=anchor.length,
            head_hash=anchor.head_hash,
            anchor_timestamp=anchor.anchored_ms,
            anchor=f"{anchor.length}:{anchor.head_hash}",
        )


class AnchorResponse(BaseModel):
    anchor: Anchor | None = Field(description="None while the audit chain is empty.")


class AnchorList(BaseModel):
    """The latest anchors, newest first."""

    anchors: list[Anchor]


class ExportRecord(BaseModel):
    """One line of a JSON Lines export (CSV: one row, the same fields as columns). `record` is
    `header` (format, the query, the run of the chain: after_seq, last_seq, start_hash, and
    the chain's length and head), `entry` (the fields below), `link` (an entry of a model not
    exported: chain_seq, content_hash, prev_hash, entry_hash) or `end` (count, last_seq,
    last_hash). See the README's "Audit export" for the canonical form and the hashes."""

    record: Literal["header", "entry", "link", "end"]
    chain_seq: int | None = None
    recorded_ms: int | None = None
    id: str | None = None
    request_id: str | None = None
    seq: int | None = None
    model: str | None = None
    version: str | None = None
    activity_type: str | None = None
    user_id: str | None = None
    from_stage: str | None = None
    to_stage: str | None = None
    comment: str | None = None
    system_comment: str | None = None
    creation_timestamp: int | None = None
    roles: list[str] | None = None
    content_hash: str | None = None
    prev_hash: str | None = None
    entry_hash: str | None = None
