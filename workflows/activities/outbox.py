"""The `record_ledger` activity: the workflow's outbox to the ledger (see
`workflows.transition.outbox`), which also tells the request's Slack message to catch up
(`workflows.slack.message`). Webhook announcements go out through `announce_webhooks`
(`workflows.webhooks.events.AnnounceActivities`)."""

from __future__ import annotations

from temporalio import activity

from workflows.ledger import Ledger
from workflows.messages import LedgerUpdate
from workflows.metrics import LEDGER_WRITE_RETRIES
from workflows.slack.message import follow_request


class LedgerActivities:
    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger

    @activity.defn
    async def record_ledger(self, update: LedgerUpdate) -> None:
        if activity.info().attempt > 1:
            LEDGER_WRITE_RETRIES.labels("activity").inc()
        await self.ledger.requests.record(snapshot=update.snapshot, entries=update.entries)
        if update.notify.slack:
            await follow_request(
                activity.client(),
                activity.info().task_queue,
                request_id=update.snapshot.id,
                channel=update.notify.slack,
                revision=update.snapshot.revision,
            )
