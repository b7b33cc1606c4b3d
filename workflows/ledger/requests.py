"""Requests (the projection of each TransitionWorkflow) and the append-only audit log.

Writes come from workflow activities, which run at least once, so every write is idempotent:
audit entries are keyed by an id the writer chose (`<request id>-<seq>`), and a request is only
overwritten by a snapshot with a higher `revision`.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import delete as sql_delete
from sqlalchemy import update as sql_update
from sqlmodel import Session, col, select

from workflows.domain import (
    Approval,
    AuditEntry,
    AuditType,
    CheckResult,
    RequestSnapshot,
    RequestState,
)
from workflows.ledger.engine import Database
from workflows.ledger.tables import AuditEntryRow, RequestApproverRoleRow, TransitionRequestRow

OPEN_STATES = [RequestState.PENDING.value, RequestState.APPLYING.value]


class RequestRepository:
    """`ledger.requests`: request snapshots and their audit entries."""

    def __init__(self, database: Database) -> None:
        self._db = database

    # -- writes ---------------------------------------------------------------------------

    async def record(
        self, *, snapshot: RequestSnapshot, entries: Sequence[AuditEntry] = ()
    ) -> None:
        """Store a workflow's snapshot (unless a newer or equal revision is stored) and its new
        audit entries. Recording the same thing again changes nothing."""

        def work(session: Session) -> None:
            row = session.get(TransitionRequestRow, snapshot.id)
            if row is None:
                session.add(request_row(snapshot))
                session.flush()
                index_approver_roles(session, snapshot)
            elif snapshot.revision > row.revision:
                indexed = (row.state, row.approver_roles)
                # Compared again in SQL: a newer revision may have been committed since the read.
                result = session.exec(
                    sql_update(TransitionRequestRow)
                    .where(
                        col(TransitionRequestRow.id) == snapshot.id,
                        col(TransitionRequestRow.revision) < snapshot.revision,
                    )
                    .values(request_row(snapshot).model_dump(exclude={"id"}))
                    .execution_options(synchronize_session=False)
                )
                if result.rowcount and indexed != (snapshot.state.value, snapshot.approver_roles):
                    index_approver_roles(session, snapshot)
            add_entries(session, entries)

        # Each IntegrityError means a concurrent writer committed one of these keys first; the
        # retry sees that row and skips it, so one attempt per key (and one more) suffices.
        await self._db.run(work, attempts=len(entries) + 2)

    async def append_entries(self, *, entries: Sequence[AuditEntry]) -> None:
        """Add audit entries that belong to no request (break-glass transitions, out-of-band
        changes); keyed by their ids, so adding one again changes nothing."""
        await self._db.run(lambda session: add_entries(session, entries), attempts=2)

    # -- reads ----------------------------------------------------------------------------

    async def get(self, request_id: str) -> RequestSnapshot | None:
        def work(session: Session) -> RequestSnapshot | None:
            row = session.get(TransitionRequestRow, request_id)
            return snapshot_of(row) if row else None

        return await self._db.run(work)

    async def search(
        self,
        *,
        model: str | None = None,
        version: str | None = None,
        open_only: bool = False,
        limit: int = 100,
    ) -> list[RequestSnapshot]:
        """Requests, newest first; narrowed to a model, a version, the open ones."""
        query = select(TransitionRequestRow)
        if model is not None:
            query = query.where(TransitionRequestRow.model_name == model)
        if version is not None:
            query = query.where(TransitionRequestRow.version == version)
        if open_only:
            query = query.where(col(TransitionRequestRow.state).in_(OPEN_STATES))
        query = query.order_by(col(TransitionRequestRow.created_ms).desc()).limit(limit)
        return await self._db.run(lambda session: [snapshot_of(r) for r in session.exec(query)])

    async def entry(self, entry_id: str) -> AuditEntry | None:
        """One audit entry by its id."""

        def work(session: Session) -> AuditEntry | None:
            row = session.get(AuditEntryRow, entry_id)
            return entry_of(row) if row else None

        return await self._db.run(work)

    async def audit_trail(self, model: str, version: str) -> list[AuditEntry]:
        """The audit trail of one model version, oldest first."""
        query = (
            select(AuditEntryRow)
            .where(AuditEntryRow.model_name == model, AuditEntryRow.version == version)
            .order_by(col(AuditEntryRow.created_ms), col(AuditEntryRow.seq), col(AuditEntryRow.id))
        )
        return await self._db.run(lambda session: [entry_of(r) for r in session.exec(query)])

    async def entries_since(self, audit_type: AuditType, since_ms: int) -> list[AuditEntry]:
        """Audit entries of one type written at or after `since_ms`, oldest first."""
        query = (
            select(AuditEntryRow)
            .where(
                AuditEntryRow.activity_type == audit_type.value,
                col(AuditEntryRow.created_ms) >= since_ms,
            )
            .order_by(col(AuditEntryRow.created_ms), col(AuditEntryRow.id))
        )
        return await self._db.run(lambda session: [entry_of(r) for r in session.exec(query)])


# -- mapping (the column names differ from the domain's: model_name, created_ms) -------------


def add_entries(session: Session, entries: Sequence[AuditEntry]) -> None:
    """Add the entries not stored yet (write-once by id), in `session`'s transaction."""
    for entry in entries:
        if session.get(AuditEntryRow, entry.id) is None:
            session.add(entry_row(entry))


def index_approver_roles(session: Session, snapshot: RequestSnapshot) -> None:
    """The inbox's index of the request, in `session`'s transaction: a row per approver role
    while it is PENDING, none once it is not."""
    session.exec(
        sql_delete(RequestApproverRoleRow).where(
            col(RequestApproverRoleRow.request_id) == snapshot.id
        )
    )
    if snapshot.state is RequestState.PENDING:
        for role in dict.fromkeys(snapshot.approver_roles or []):
            session.add(RequestApproverRoleRow(request_id=snapshot.id, role=role))


def request_row(snapshot: RequestSnapshot) -> TransitionRequestRow:
    return TransitionRequestRow(
        id=snapshot.id,
        workflow_id=snapshot.workflow_id,
        run_id=snapshot.run_id,
        model_name=snapshot.model,
        version=snapshot.version,
        target=snapshot.target,
        from_stage=snapshot.from_stage,
        requester=snapshot.requester,
        comment=snapshot.comment,
        state=snapshot.state.value,
        reason=snapshot.reason,
        policy_hash=snapshot.policy_hash,
        quorum=snapshot.quorum,
        checks=[check.model_dump(mode="json") for check in snapshot.checks],
        approvals=[approval.model_dump(mode="json") for approval in snapshot.approvals],
        revision=snapshot.revision,
        created_ms=snapshot.created_ms,
        updated_ms=snapshot.updated_ms,
        approver_roles=snapshot.approver_roles,
        self_approval=snapshot.self_approval,
    )


def snapshot_of(row: TransitionRequestRow) -> RequestSnapshot:
    return RequestSnapshot(
        id=row.id,
        workflow_id=row.workflow_id,
        run_id=row.run_id,
        model=row.model_name,
        version=row.version,
        target=row.target,
        from_stage=row.from_stage,
        requester=row.requester,
        comment=row.comment,
        state=RequestState(row.state),
        reason=row.reason,
        policy_hash=row.policy_hash,
        quorum=row.quorum,
        checks=[CheckResult.model_validate(check) for check in row.checks or []],
        approvals=[Approval.model_validate(approval) for approval in row.approvals or []],
        revision=row.revision,
        created_ms=row.created_ms,
        updated_ms=row.updated_ms,
        approver_roles=row.approver_roles,
        self_approval=bool(row.self_approval),
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
