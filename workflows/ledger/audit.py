"""The audit log's writes and its chain: `add_entries` (the one way an audit entry is stored:
write-once by id, appended to the audit chain under the chain head's lock), and
`ledger.audit`: the chain's head, its anchors, and exports read a page at a time.

Appends from any number of API and worker processes serialise on the one `audit_chain` row:
the first statement of an append is an UPDATE of that row, which takes PostgreSQL's row lock
(held to commit) and, on SQLite, the database's write lock (pysqlite opens the transaction
there, so nothing read earlier is stale). Whatever the transaction then reads of the chain is
the committed head. A transaction takes the head last, after every other row it writes, so
two appends never wait on each other in a cycle.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Any

from sqlalchemy import func
from sqlalchemy import update as sql_update
from sqlmodel import Session, col, select

from workflows.domain import AuditEntry, AuditType, now_ms
from workflows.ledger.chain import (
    GENESIS_HASH,
    content_hash,
    content_of,
    end_record,
    entry_record,
    header_record,
    link_record,
    seal,
)
from workflows.ledger.engine import Database
from workflows.ledger.records import AuditAnchor, ChainedEntry, ExportRange
from workflows.ledger.tables import AuditAnchorRow, AuditChainRow, AuditEntryRow

HEAD_ID = 1
"""The id of the `audit_chain` row."""
EXPORT_PAGE = 500
"""Entries read per query while an export streams."""


# -- writes -----------------------------------------------------------------------------------


def add_entries(session: Session, entries: Sequence[AuditEntry]) -> None:
    """Add the entries not stored yet (write-once by id) at the end of the audit chain, in
    `session`'s transaction. Call it after the transaction's other writes (see above)."""
    if not entries:
        return
    head = lock_head(session)
    for entry in entries:
        if session.get(AuditEntryRow, entry.id) is None:
            row = entry_row(entry)
            chain(row, head)
            session.add(row)
            session.flush()  # a second entry with the same id in `entries` now finds this one
    session.add(head)


def lock_head(session: Session) -> AuditChainRow:
    """The chain head, locked until the transaction ends."""
    session.exec(
        sql_update(AuditChainRow)
        .where(col(AuditChainRow.id) == HEAD_ID)
        .values(length=AuditChainRow.length)
        .execution_options(synchronize_session=False)
    )  # type: ignore[call-overload]
    head = session.get(AuditChainRow, HEAD_ID, with_for_update=True, populate_existing=True)
    if head is None:
        raise RuntimeError("the ledger has no audit_chain row; run its migrations")
    return head


def chain(row: AuditEntryRow, head: AuditChainRow) -> None:
    """Give `row` the next place in the chain and its hashes; move `head` past it. The
    recording time never goes back along the chain, whatever the writers' clocks say."""
    recorded = max(now_ms(), head.recorded_ms)
    row.chain_seq = head.length + 1
    row.recorded_ms = recorded
    row.prev_hash = head.head_hash
    row.entry_hash = seal(row_content(row), head.head_hash)
    head.length, head.head_hash, head.recorded_ms = row.chain_seq, row.entry_hash, recorded


def row_content(row: Any) -> dict[str, Any]:
    """The canonical content of a stored entry (a table row, or a row of the `activities`
    table read by a migration)."""
    return content_of(
        {
            "chain_seq": row.chain_seq,
            "recorded_ms": row.recorded_ms,
            "id": row.id,
            "request_id": row.request_id,
            "seq": row.seq,
            "model": row.model_name,
            "version": row.version,
            "activity_type": row.activity_type,
            "user_id": row.user_id,
            "from_stage": row.from_stage,
            "to_stage": row.to_stage,
            "comment": row.comment,
            "system_comment": row.system_comment,
            "creation_timestamp": row.created_ms,
            "roles": row.roles,
        }
    )


def entry_row(entry: AuditEntry) -> AuditEntryRow:
    return AuditEntryRow(
        id=entry.id,
        request_id=entry.request_id or None,
        seq=entry.seq,
        model_name=entry.model,
        version=entry.version,
        activity_type=entry.activity_type.value,
        user_id=entry.user_id,
        from_stage=entry.from_stage,
        to_stage=entry.to_stage,
        comment=entry.comment,
        system_comment=entry.system_comment,
        created_ms=entry.creation_timestamp,
        updated_ms=entry.creation_timestamp,
        roles=entry.roles or None,
    )


def entry_of(row: AuditEntryRow) -> AuditEntry:
    return AuditEntry(
        id=row.id,
        request_id=row.request_id or "",
        seq=row.seq,
        model=row.model_name,
        version=row.version,
        activity_type=AuditType(row.activity_type),
        user_id=row.user_id,
        from_stage=row.from_stage,
        to_stage=row.to_stage,
        comment=row.comment,
        system_comment=row.system_comment,
        creation_timestamp=row.created_ms,
        roles=list(row.roles or []),
    )


def chained_entry(row: AuditEntryRow) -> ChainedEntry:
    return ChainedEntry(**row_content(row), prev_hash=row.prev_hash, entry_hash=row.entry_hash)


# -- the repository ---------------------------------------------------------------------------


class AuditRepository:
    """`ledger.audit`: the audit chain's head, anchors and exports."""

    def __init__(self, database: Database) -> None:
        self._db = database

    async def head(self) -> AuditAnchor:
        """The chain as it stands: its length and the hash of its last entry (not recorded
        as an anchor; `anchored_ms` is the last entry's recording time)."""

        def work(session: Session) -> AuditAnchor:
            row = session.get(AuditChainRow, HEAD_ID)
            if row is None:
                return AuditAnchor(length=0, head_hash=GENESIS_HASH, anchored_ms=0)
            return AuditAnchor(
                length=row.length, head_hash=row.head_hash, anchored_ms=row.recorded_ms
            )

        return await self._db.run(work)

    async def place(self, entry_id: str) -> tuple[int, str] | None:
        """Where an audit entry is in the chain: its `chain_seq` and `entry_hash` (None for an
        entry the ledger does not hold)."""

        def work(session: Session) -> tuple[int, str] | None:
            row = session.get(AuditEntryRow, entry_id)
            return (row.chain_seq, row.entry_hash) if row is not None else None

        return await self._db.run(work)

    async def anchor(self, at_ms: int) -> AuditAnchor | None:
        """Record the chain's head as an anchor (None while the chain is empty). Keyed by the
        chain's length: anchoring again before anything was appended returns the same one."""

        def work(session: Session) -> AuditAnchor | None:
            head = session.get(AuditChainRow, HEAD_ID)
            if head is None or head.length == 0:
                return None
            row = session.get(AuditAnchorRow, head.length)
            if row is None:
                row = AuditAnchorRow(
                    length=head.length, head_hash=head.head_hash, anchored_ms=at_ms
                )
                session.add(row)
            return AuditAnchor.model_validate(row, from_attributes=True)

        return await self._db.run(work, attempts=2)

    async def anchors(self, limit: int = 20) -> list[AuditAnchor]:
        """The latest anchors, newest first."""
        query = select(AuditAnchorRow).order_by(col(AuditAnchorRow.length).desc()).limit(limit)
        return await self._db.run(
            lambda session: [
                AuditAnchor.model_validate(row, from_attributes=True) for row in session.exec(query)
            ]
        )

    async def export_range(self, since_ms: int | None, until_ms: int | None) -> ExportRange:
        """The run of the chain recorded at or after `since_ms` and before `until_ms`, up to
        its head now. Recording times never go back along the chain, so it is contiguous."""
        return await self._db.run(lambda session: _export_range(session, since_ms, until_ms))

    async def page(self, after_seq: int, last_seq: int, limit: int) -> list[ChainedEntry]:
        """Entries `after_seq + 1` .. `last_seq`, at most `limit`, in chain order."""
        query = (
            select(AuditEntryRow)
            .where(col(AuditEntryRow.chain_seq) > after_seq)
            .where(col(AuditEntryRow.chain_seq) <= last_seq)
            .order_by(col(AuditEntryRow.chain_seq))
            .limit(limit)
        )
        return await self._db.run(lambda session: [chained_entry(r) for r in session.exec(query)])

    async def export(
        self,
        *,
        since_ms: int | None = None,
        until_ms: int | None = None,
        models: Sequence[str] | None = None,
        exported_ms: int | None = None,
        page_size: int = EXPORT_PAGE,
    ) -> AsyncIterator[dict[str, Any]]:
        """The records of an export (`workflows.ledger.chain`): the header, every entry of the
        range in chain order (an entry of a model not in `models` as a link: place and
        hashes, no content), the end. Read `page_size` entries per query."""
        span = await self.export_range(since_ms, until_ms)
        yield header_record(
            since=since_ms,
            until=until_ms,
            models=sorted(models) if models is not None else None,
            after_seq=span.after_seq,
            last_seq=span.last_seq,
            start_hash=span.start_hash,
            chain_length=span.chain_length,
            chain_head=span.chain_head,
            exported_ms=exported_ms if exported_ms is not None else now_ms(),
        )
        wanted = set(models) if models is not None else None
        after, last_hash, count = span.after_seq, span.start_hash, 0
        while after < span.last_seq:
            entries = await self.page(after, span.last_seq, page_size)
            if not entries:
                break  # cannot happen: chain places have no gaps
            for entry in entries:
                yield _record_of(entry, wanted)
            after, last_hash = entries[-1].chain_seq, entries[-1].entry_hash
            count += len(entries)
        yield end_record(count, after, last_hash)


def _record_of(entry: ChainedEntry, wanted: set[str] | None) -> dict[str, Any]:
    content = content_of(entry.model_dump())
    if wanted is None or entry.model in wanted:
        return entry_record(content, entry.prev_hash, entry.entry_hash)
    return link_record(entry.chain_seq, content_hash(content), entry.prev_hash, entry.entry_hash)


def _export_range(session: Session, since_ms: int | None, until_ms: int | None) -> ExportRange:
    head = session.get(AuditChainRow, HEAD_ID)
    length, head_hash = (head.length, head.head_hash) if head else (0, GENESIS_HASH)
    seq = col(AuditEntryRow.chain_seq)
    first_query = select(func.min(seq)).where(seq <= length)
    last_query = select(func.max(seq)).where(seq <= length)
    if since_ms is not None:
        first_query = first_query.where(col(AuditEntryRow.recorded_ms) >= since_ms)
    if until_ms is not None:
        last_query = last_query.where(col(AuditEntryRow.recorded_ms) < until_ms)
    first = session.exec(first_query).one()
    last = session.exec(last_query).one() or 0
    after = first - 1 if first is not None else length
    last = max(after, last)
    start_hash = GENESIS_HASH
    if after > 0:
        start_hash = session.exec(select(AuditEntryRow.entry_hash).where(seq == after)).one()
    return ExportRange(
        after_seq=after,
        last_seq=last,
        start_hash=start_hash,
        chain_length=length,
        chain_head=head_hash,
    )
