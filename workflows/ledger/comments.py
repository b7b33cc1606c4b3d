"""Comments on a model version.

A comment is a row of `comments` (its current text) plus one NEW_COMMENT entry in the
append-only audit log, written in the same transaction. The entry keeps the text as first
posted: an edit changes the comment only, and a deletion removes the comment and leaves the
entry, so the audit trail still shows what was said and when.
"""

from __future__ import annotations

from sqlalchemy import delete as sql_delete
from sqlalchemy import func
from sqlmodel import Session, col, select

from workflows.domain import AuditEntry, AuditType
from workflows.ledger.audit import add_entries
from workflows.ledger.engine import Database
from workflows.ledger.records import Comment
from workflows.ledger.tables import CommentRow


def comment_entry_id(comment_id: str) -> str:
    """The id of the NEW_COMMENT audit entry that records a comment."""
    return f"comment-{comment_id}"


class CommentRepository:
    """`ledger.comments`."""

    def __init__(self, database: Database) -> None:
        self._db = database

    async def add(
        self, *, comment_id: str, model: str, version: str, user_id: str, text: str, now_ms: int
    ) -> Comment:
        """Store a new comment and its NEW_COMMENT entry (id `comment-<comment_id>`), at
        `now_ms` or 1 ms after the version's newest comment, whichever is later.
        `comment_id` is the idempotency key: adding it again returns the stored comment and
        writes nothing."""

        def work(session: Session) -> Comment:
            existing = session.get(CommentRow, comment_id)
            if existing is not None:
                return _comment(existing)
            # Comments are listed oldest first by time: keep each new one after the version's
            # last, even when two arrive within the same millisecond.
            latest = session.exec(
                select(func.max(CommentRow.created_ms)).where(
                    CommentRow.model_name == model, CommentRow.version == version
                )
            ).one()
            at = latest + 1 if latest is not None and latest >= now_ms else now_ms
            row = CommentRow(
                id=comment_id,
                model_name=model,
                version=version,
                user_id=user_id,
                comment=text,
                created_ms=at,
                updated_ms=at,
            )
            session.add(row)
            entry = AuditEntry(
                id=comment_entry_id(comment_id),
                request_id="",
                seq=0,
                model=model,
                version=version,
                activity_type=AuditType.NEW_COMMENT,
                user_id=user_id,
                from_stage=None,
                to_stage=None,
                comment=text,
                creation_timestamp=at,
            )
            add_entries(session, [entry])
            return _comment(row)

        # A concurrent writer may store the same comment id first; the retry returns it.
        return await self._db.run(work, attempts=2)

    async def get(self, comment_id: str) -> Comment | None:
        def work(session: Session) -> Comment | None:
            row = session.get(CommentRow, comment_id)
            return _comment(row) if row else None

        return await self._db.run(work)

    async def on_version(self, model: str, version: str) -> list[Comment]:
        """The comments on one model version, oldest first."""
        query = (
            select(CommentRow)
            .where(CommentRow.model_name == model, CommentRow.version == version)
            .order_by(col(CommentRow.created_ms), col(CommentRow.id))
        )
        return await self._db.run(lambda session: [_comment(r) for r in session.exec(query)])

    async def update(self, *, comment_id: str, text: str, now_ms: int) -> Comment | None:
        """Replace a comment's text; None when there is no such comment (any more). The
        NEW_COMMENT entry keeps the original text."""

        def work(session: Session) -> Comment | None:
            row = session.get(CommentRow, comment_id, with_for_update=True)
            if row is None:
                return None
            row.comment = text
            row.updated_ms = max(now_ms, row.updated_ms)
            session.add(row)
            return _comment(row)

        return await self._db.run(work)

    async def delete(self, *, comment_id: str) -> bool:
        """Remove a comment; False when there was none. Its NEW_COMMENT entry stays."""

        def work(session: Session) -> bool:
            result = session.exec(
                sql_delete(CommentRow)
                .where(col(CommentRow.id) == comment_id)
                .execution_options(synchronize_session=False)
            )
            return bool(result.rowcount)

        return await self._db.run(work)


def _comment(row: CommentRow) -> Comment:
    return Comment.model_validate(row, from_attributes=True)
