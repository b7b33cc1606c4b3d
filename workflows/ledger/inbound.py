"""Inbound webhooks (an inbound decision, or one of MLflow's): the claims that make a replay
do nothing, and the record of how each message ended.

A verified message claims "<source>/<message id>" (unique in the table); a claim is released
(set to NULL) when Signoff, not the message, failed, so the sender's retry is processed.
"""

from __future__ import annotations

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from workflows.ledger.engine import Database
from workflows.ledger.records import InboundHook
from workflows.ledger.tables import InboundHookRow

STALE_CLAIM_MS = 120_000
"""A claim still PROCESSING after this long belongs to a process that died mid-message."""


class InboundHookRepository:
    """`ledger.inbound`."""

    def __init__(self, database: Database) -> None:
        self._db = database

    async def claim(
        self,
        *,
        hook_id: str,
        source: str,
        message_id: str,
        received_ms: int,
        stale_after_ms: int = STALE_CLAIM_MS,
    ) -> bool:
        """Record a verified message, PROCESSING, under the claim "<source>/<message_id>";
        False when that claim is taken already, i.e. the message is a replay and must do
        nothing. A claim still PROCESSING after `stale_after_ms` belongs to a process that
        died mid-message: it is taken over, so the sender's retry is processed rather than
        refused for good."""
        claim = f"{source}/{message_id}"

        def work(session: Session) -> bool:
            held = session.exec(
                select(InboundHookRow).where(InboundHookRow.claim == claim).with_for_update()
            ).first()
            if held is not None:
                if held.outcome != "PROCESSING" or received_ms - held.received_ms < stale_after_ms:
                    return False
                held.claim, held.outcome = None, "ERROR"
                held.reason = "abandoned: the process handling it stopped"
                session.add(held)
                session.flush()
            session.add(
                InboundHookRow(
                    id=hook_id,
                    source=source,
                    message_id=message_id,
                    claim=claim,
                    outcome="PROCESSING",
                    received_ms=received_ms,
                )
            )
            return True

        try:
            return await self._db.run(work, attempts=2)
        except IntegrityError:  # claimed concurrently, twice over
            return False

    async def record(
        self,
        *,
        hook_id: str,
        source: str,
        message_id: str | None,
        received_ms: int,
        outcome: str,
        reason: str | None = None,
    ) -> None:
        """Record a message refused before it could claim anything (it never claims)."""
        row = InboundHookRow(
            id=hook_id,
            source=source,
            message_id=message_id,
            claim=None,
            outcome=outcome,
            reason=reason,
            received_ms=received_ms,
        )
        await self._db.run(lambda session: session.add(row))

    async def finish(
        self,
        *,
        hook_id: str,
        outcome: str,
        reason: str | None,
        event: str | None = None,
        user_id: str | None = None,
        request_id: str | None = None,
    ) -> None:
        """Set the outcome of a claimed message, and what it was about (the fields given).
        An outcome of ERROR (Signoff could not act on it just now) gives the claim back, so
        the sender's retry is processed, not dropped. Nothing when there is no such record."""
        about = {"event": event, "user_id": user_id, "request_id": request_id}

        def work(session: Session) -> None:
            row = session.get(InboundHookRow, hook_id, with_for_update=True)
            if row is None:
                return
            row.outcome = outcome
            row.reason = reason
            if outcome == "ERROR":
                row.claim = None
            for name, value in about.items():
                if value is not None:
                    setattr(row, name, value)
            session.add(row)

        await self._db.run(work)

    async def recent(self, *, source: str | None = None, limit: int = 100) -> list[InboundHook]:
        """Inbound messages, newest first; with `source`, that source's only."""
        query = select(InboundHookRow).order_by(
            col(InboundHookRow.received_ms).desc(), col(InboundHookRow.id)
        )
        if source is not None:
            query = query.where(InboundHookRow.source == source)
        query = query.limit(limit)
        return await self._db.run(
            lambda session: [
                InboundHook.model_validate(row, from_attributes=True) for row in session.exec(query)
            ]
        )
