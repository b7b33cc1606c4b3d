"""GitHub deployments waiting on Signoff (`deployment_protection_rule` events) and the answers
Signoff gave them: written by the gate workflow's activities, idempotently (the row is keyed by
the event's delivery id, and an answered gate is never set back to WAITING)."""

from __future__ import annotations

from sqlmodel import Session, col, select

from workflows.ledger.engine import Database
from workflows.ledger.records import DeploymentGate
from workflows.ledger.tables import DeploymentGateRow

WAITING = "WAITING"


class DeploymentGateRepository:
    """`ledger.deployment_gates`."""

    def __init__(self, database: Database) -> None:
        self._db = database

    async def record(self, gate: DeploymentGate) -> None:
        """Store the gate as it stands now. Recording the same thing again changes nothing;
        a WAITING record never overwrites an answered one (a retried activity)."""

        def work(session: Session) -> None:
            row = session.get(DeploymentGateRow, gate.id, with_for_update=True)
            if row is None:
                session.add(DeploymentGateRow(**gate.model_dump()))
                return
            if gate.state == WAITING and row.state != WAITING:
                return
            for name, value in gate.model_dump(exclude={"id", "created_ms"}).items():
                setattr(row, name, value)
            session.add(row)

        await self._db.run(work, attempts=2)

    async def of_run(self, repository_id: str, run_id: str) -> list[DeploymentGate]:
        """The gates of one workflow run, oldest first."""
        query = (
            select(DeploymentGateRow)
            .where(
                DeploymentGateRow.repository_id == repository_id,
                DeploymentGateRow.run_id == run_id,
            )
            .order_by(col(DeploymentGateRow.created_ms), col(DeploymentGateRow.id))
        )
        return await self._db.run(
            lambda session: [DeploymentGate.model_validate(row) for row in session.exec(query)]
        )
