"""Registry webhook subscriptions and their deliveries (each with its HTTP attempts).

Secrets arrive and stay encrypted (`secret_enc`, `authorization_enc`: Fernet tokens made by
the caller's `SecretBox`); the ledger never sees a plaintext.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete as sql_delete
from sqlmodel import Session, col, select

from workflows.ledger.engine import Database
from workflows.ledger.records import (
    WEBHOOK_CHANGEABLE,
    DeliveryAttempt,
    Webhook,
    WebhookDelivery,
)
from workflows.ledger.tables import WebhookDeliveryRow, WebhookRow


class WebhookRepository:
    """`ledger.webhooks`: subscriptions, and `*_delivery` / `deliveries` for what they sent."""

    def __init__(self, database: Database) -> None:
        self._db = database

    # -- subscriptions ----------------------------------------------------------------------

    async def add(
        self,
        *,
        webhook_id: str,
        model_name: str | None,
        events: list[str],
        description: str | None,
        status: str,
        url: str,
        enable_ssl_verification: bool,
        secret_enc: str | None,
        authorization_enc: str | None,
        created_by: str,
        now_ms: int,
    ) -> Webhook:
        row = WebhookRow(
            id=webhook_id,
            model_name=model_name,
            events=list(events),
            description=description,
            status=status,
            url=url,
            enable_ssl_verification=enable_ssl_verification,
            secret_enc=secret_enc,
            authorization_enc=authorization_enc,
            created_by=created_by,
            created_ms=now_ms,
            updated_ms=now_ms,
        )

        def work(session: Session) -> Webhook:
            session.add(row)
            return _webhook(row)

        return await self._db.run(work)

    async def get(self, webhook_id: str) -> Webhook | None:
        def work(session: Session) -> Webhook | None:
            row = session.get(WebhookRow, webhook_id)
            return _webhook(row) if row else None

        return await self._db.run(work)

    async def search(self, *, model_name: str | None = None) -> list[Webhook]:
        """All webhooks, oldest first; with `model_name`, that model's only."""
        query = select(WebhookRow).order_by(col(WebhookRow.created_ms), col(WebhookRow.id))
        if model_name is not None:
            query = query.where(WebhookRow.model_name == model_name)
        return await self._db.run(lambda session: [_webhook(r) for r in session.exec(query)])

    async def matching(
        self, event: str, model_name: str | None, as_of_ms: int | None = None
    ) -> list[Webhook]:
        """ACTIVE webhooks subscribed to `event`: the model's own and the registry-wide ones;
        with `as_of_ms`, only those that existed then (an event is not news to a webhook
        subscribed after it happened)."""
        query = select(WebhookRow).where(WebhookRow.status == "ACTIVE")
        if as_of_ms is not None:
            query = query.where(col(WebhookRow.created_ms) <= as_of_ms)
        hooks = await self._db.run(lambda session: [_webhook(r) for r in session.exec(query)])
        return [
            hook for hook in hooks if event in hook.events and hook.model_name in (None, model_name)
        ]

    async def update(self, *, webhook_id: str, now_ms: int, **changes: Any) -> Webhook | None:
        """Set the given fields (any of `WEBHOOK_CHANGEABLE`); None when there is no such
        webhook."""
        unknown = sorted(set(changes) - WEBHOOK_CHANGEABLE)
        if unknown:
            raise ValueError(f"webhook fields {unknown} cannot be changed")

        def work(session: Session) -> Webhook | None:
            row = session.get(WebhookRow, webhook_id, with_for_update=True)
            if row is None:
                return None
            for name, value in changes.items():
                setattr(row, name, value)
            row.updated_ms = max(now_ms, row.updated_ms)
            session.add(row)
            return _webhook(row)

        return await self._db.run(work)

    async def delete(self, *, webhook_id: str) -> bool:
        """Remove a webhook; False when there was none."""

        def work(session: Session) -> bool:
            result = session.exec(
                sql_delete(WebhookRow)
                .where(col(WebhookRow.id) == webhook_id)
                .execution_options(synchronize_session=False)
            )
            return bool(result.rowcount)

        return await self._db.run(work)

    # -- deliveries -------------------------------------------------------------------------

    async def add_delivery(
        self,
        *,
        delivery_id: str,
        webhook_id: str,
        event: str,
        payload: dict[str, Any],
        now_ms: int,
    ) -> WebhookDelivery:
        """A PENDING delivery. Idempotent by `delivery_id`: adding it again returns the
        stored delivery."""

        def work(session: Session) -> WebhookDelivery:
            existing = session.get(WebhookDeliveryRow, delivery_id)
            if existing is not None:
                return _delivery(existing)
            row = WebhookDeliveryRow(
                id=delivery_id,
                webhook_id=webhook_id,
                event=event,
                payload=payload,
                state="PENDING",
                attempts=[],
                created_ms=now_ms,
                updated_ms=now_ms,
            )
            session.add(row)
            return _delivery(row)

        return await self._db.run(work, attempts=2)

    async def get_delivery(self, delivery_id: str) -> WebhookDelivery | None:
        def work(session: Session) -> WebhookDelivery | None:
            row = session.get(WebhookDeliveryRow, delivery_id)
            return _delivery(row) if row else None

        return await self._db.run(work)

    async def deliveries(self, webhook_id: str) -> list[WebhookDelivery]:
        """A webhook's deliveries, newest first."""
        query = (
            select(WebhookDeliveryRow)
            .where(WebhookDeliveryRow.webhook_id == webhook_id)
            .order_by(col(WebhookDeliveryRow.created_ms).desc(), col(WebhookDeliveryRow.id))
        )
        return await self._db.run(lambda session: [_delivery(r) for r in session.exec(query)])

    async def record_attempt(
        self, *, delivery_id: str, attempt: DeliveryAttempt, state: str, now_ms: int
    ) -> None:
        """Add one attempt (idempotent by its `attempt` number) and set the delivery's state;
        nothing when there is no such delivery."""

        def work(session: Session) -> None:
            row = session.get(WebhookDeliveryRow, delivery_id, with_for_update=True)
            if row is None:
                return
            kept = [a for a in (row.attempts or []) if a["attempt"] != attempt.attempt]
            row.attempts = sorted([*kept, attempt.model_dump()], key=lambda a: a["attempt"])
            row.state = state
            row.updated_ms = max(now_ms, row.updated_ms)
            session.add(row)

        await self._db.run(work)

    async def set_delivery_state(self, *, delivery_id: str, state: str, now_ms: int) -> None:
        def work(session: Session) -> None:
            row = session.get(WebhookDeliveryRow, delivery_id, with_for_update=True)
            if row is not None:
                row.state = state
                row.updated_ms = max(now_ms, row.updated_ms)
                session.add(row)

        await self._db.run(work)


def _webhook(row: WebhookRow) -> Webhook:
    return Webhook.model_validate(row, from_attributes=True)


def _delivery(row: WebhookDeliveryRow) -> WebhookDelivery:
    return WebhookDelivery.model_validate(row, from_attributes=True)
