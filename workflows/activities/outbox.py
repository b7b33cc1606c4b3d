"""The `record_ledger` activity: the workflow's outbox to the ledger (see
`workflows.transition.outbox`). Webhook announcements go out through `announce_webhooks`
(`workflows.webhooks.events.AnnounceActivities`)."""

from __future__ import annotations

from temporalio import activity

from workflows.ledger import Ledger
from workflows.messages import LedgerUpdate


class LedgerActivities:
    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger

    @activity.defn
    async def record_ledger(self, update: LedgerUpdate) -> None:
        await self.ledger.requests.record(snapshot=update.snapshot, entries=update.entries)
