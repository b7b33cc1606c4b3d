"""Reconciler runs: one row per pass; the first pass ever takes the registry as it is."""

from __future__ import annotations

from sqlmodel import Session, col, select

from workflows.ledger.engine import Database
from workflows.ledger.records import ReconcilerRun
from workflows.ledger.tables import ReconcilerRunRow


class ReconcilerRunRepository:
    """`ledger.runs`."""

    def __init__(self, database: Database) -> None:
        self._db = database

    async def add(
        self,
        *,
        run_id: str,
        started_ms: int,
        finished_ms: int,
        versions: int,
        changes: int,
        baseline: bool,
    ) -> ReconcilerRun:
        row = ReconcilerRunRow(
            id=run_id,
            started_ms=started_ms,
            finished_ms=finished_ms,
            versions=versions,
            changes=changes,
            baseline=baseline,
        )

        def work(session: Session) -> ReconcilerRun:
            session.add(row)
            return _run(row)

        return await self._db.run(work)

    async def latest(self, limit: int = 20) -> list[ReconcilerRun]:
        """The newest passes first."""
        query = select(ReconcilerRunRow).order_by(col(ReconcilerRunRow.started_ms).desc())
        query = query.limit(limit)
        return await self._db.run(lambda session: [_run(r) for r in session.exec(query)])


def _run(row: ReconcilerRunRow) -> ReconcilerRun:
    return ReconcilerRun.model_validate(row, from_attributes=True)
