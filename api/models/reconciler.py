"""The reconciler's passes on the wire."""

from __future__ import annotations

from pydantic import BaseModel, Field

from workflows.ledger import ReconcilerRun as RunRecord


class ReconcilerStarted(BaseModel):
    started: bool


class ReconcilerRun(BaseModel):
    """One pass over the registry: how many versions it read and out-of-band changes found."""

    id: str
    start_timestamp: int = Field(description="Epoch milliseconds.")
    end_timestamp: int = Field(description="Epoch milliseconds.")
    versions: int
    changes: int
    baseline: bool = Field(description="The first pass, which records what it finds as is.")

    @classmethod
    def of(cls, row: RunRecord) -> ReconcilerRun:
        return cls(
            id=row.id,
            start_timestamp=row.started_ms,
            end_timestamp=row.finished_ms,
            versions=row.versions,
            changes=row.changes,
            baseline=row.baseline,
        )


class ReconcilerRunList(BaseModel):
    """The latest passes, newest first."""

    runs: list[ReconcilerRun]
