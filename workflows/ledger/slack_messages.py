"""The Slack message that follows each request of a rule with `notify.slack`: where it was
posted and every attempt to post or update it (`workflows.slack.message` writes it)."""

from __future__ import annotations

from sqlmodel import Session

from workflows.ledger.engine import Database
from workflows.ledger.records import SlackAttempt, SlackMessage
from workflows.ledger.tables import SlackMessageRow


class SlackMessageRepository:
    """`ledger.slack_messages`."""

    def __init__(self, database: Database) -> None:
        self._db = database

    async def get(self, request_id: str) -> SlackMessage | None:
        def work(session: Session) -> SlackMessage | None:
            row = session.get(SlackMessageRow, request_id)
            return _message(row) if row else None

        return await self._db.run(work)

    async def record_attempt(
        self,
        *,
        request_id: str,
        channel: str,
        attempt: SlackAttempt,
        state: str,
        now_ms: int,
        posted: tuple[str, str] | None = None,
        sent_revision: int | None = None,
    ) -> SlackMessage:
        """Add one attempt (idempotent by its `key`; numbered in order) and set the state; with
        `posted` (channel id, ts), where the message now is; with `sent_revision`, the revision
        it shows (never lowered). Creates the record on the first attempt."""

        def work(session: Session) -> SlackMessage:
            row = session.get(SlackMessageRow, request_id, with_for_update=True)
            if row is None:
                row = SlackMessageRow(
                    request_id=request_id,
                    channel=channel,
                    state="PENDING",
                    attempts=[],
                    created_ms=now_ms,
                    updated_ms=now_ms,
                )
            attempts = list(row.attempts or [])
            if all(item.get("key") != attempt.key for item in attempts):
                numbered = attempt.model_copy(update={"attempt": len(attempts) + 1})
                row.attempts = [*attempts, numbered.model_dump()]
            row.state = state
            if posted is not None:
                row.channel_id, row.ts = posted
            if sent_revision is not None:
                row.sent_revision = max(sent_revision, row.sent_revision or 0)
            row.updated_ms = max(now_ms, row.updated_ms)
            session.add(row)
            return _message(row)

        return await self._db.run(work, attempts=2)

    async def set_state(self, *, request_id: str, state: str, now_ms: int) -> None:
        def work(session: Session) -> None:
            row = session.get(SlackMessageRow, request_id, with_for_update=True)
            if row is not None:
                row.state = state
                row.updated_ms = max(now_ms, row.updated_ms)
                session.add(row)

        await self._db.run(work)


def _message(row: SlackMessageRow) -> SlackMessage:
    return SlackMessage.model_validate(row, from_attributes=True)
