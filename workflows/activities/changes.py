"""The `record_changes` activity: everything one state change of a TransitionWorkflow hands on
(`ChangeUpdate`), in one activity instead of one each: the ledger write (`record_ledger`, with
its Slack follow-up), the other open requests a move supersedes (`close_superseded`) and the
webhook announcements (`announce_webhooks`). Each part is idempotent, so a retried attempt
repeats none of their effects."""

from __future__ import annotations

import logging

from temporalio import activity
from temporalio.exceptions import ApplicationError

from workflows.activities.outbox import LedgerActivities
from workflows.activities.registry import RegistryActivities
from workflows.messages import ChangeUpdate
from workflows.webhooks.events import AnnounceActivities

log = logging.getLogger(__name__)


class ChangeActivities:
    def __init__(
        self, outbox: LedgerActivities, moves: RegistryActivities, announcer: AnnounceActivities
    ) -> None:
        self.outbox = outbox
        self.moves = moves
        self.announcer = announcer

    @activity.defn
    async def record_changes(self, update: ChangeUpdate) -> None:
        """The ledger first (what the request's readers see), then the requests superseded,
        then the announcements. An announcement that can never be made (an unknown event) is
        logged and never fails the request, as with `announce_webhooks` on its own."""
        await self.outbox.record_ledger(update.ledger)
        if update.supersede is not None:
            await self.moves.close_superseded(update.supersede)
        if not update.events:
            return
        try:
            await self.announcer.announce_webhooks(update.events)
        except ApplicationError as err:
            if not err.non_retryable:
                raise
            log.error("could not announce %s: %s", ", ".join(e.event for e in update.events), err)
