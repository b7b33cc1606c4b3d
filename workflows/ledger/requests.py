"""Requests (the projection of each TransitionWorkflow) and the append-only audit log.

Writes come from workflow activities, which run at least once, so every write is idempotent:
audit entries are keyed by an id the writer chose (`<request id>-<seq>`), and a request is only
overwritten by a snapshot with a higher `revision`. Entries are stored, and chained, by
`workflows.ledger.audit.add_entries`.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from sqlalchemy import bindparam
from sqlalchemy import delete as sql_delete
from sqlalchemy import update as sql_update
from sqlmodel import Session, col, select

from policies import GithubGate, GithubRun
from workflows.domain import (
    Approval,
    ArtifactDigest,
    AuditEntry,
    AuditType,
    CheckResult,
    RequestSnapshot,
    RequestState,
    RollbackMark,
)
from workflows.ledger.audit import add_entries, entry_of
from workflows.ledger.engine import Database
from workflows.ledger.tables import AuditEntryRow, RequestApproverRoleRow, TransitionRequestRow
from workflows.metrics import request_recorded

log = logging.getLogger(__name__)

OPEN_STATES = [state.value for state in RequestState if state.is_open]

# The API's hot reads, built once with bound parameters: building a statement costs more of the
# event loop's time than the SQLite lookup it runs (SQLAlchemy caches the compiled SQL either way).
_R, _A = TransitionRequestRow, AuditEntryRow
_AUDIT_TRAIL = (
    select(_A)
    .where(_A.model_name == bindparam("model"), _A.version == bindparam("version"))
    .order_by(col(_A.created_ms), col(_A.seq), col(_A.id))
)


def _search_statement(model: bool, version: bool, open_only: bool) -> Any:
    query = select(_R)
    if model:
        query = query.where(_R.model_name == bindparam("model"))
    if version:
        query = query.where(_R.version == bindparam("version"))
    if open_only:
        query = query.where(col(_R.state).in_(OPEN_STATES))
    return query.order_by(col(_R.created_ms).desc()).limit(bindparam("limit"))


_SEARCHES = {
    (model, version, open_only): _search_statement(model, version, open_only)
    for model in (False, True)
    for version in (False, True)
    for open_only in (False, True)
}


class RequestRepository:
    """`ledger.requests`: request snapshots and their audit entries."""

    def __init__(self, database: Database) -> None:
        self._db = database

    # -- writes ---------------------------------------------------------------------------

    async def record(
        self, *, snapshot: RequestSnapshot, entries: Sequence[AuditEntry] = ()
    ) -> None:
        """Store a workflow's snapshot (unless a newer or equal revision is stored) and its new
        audit entries. Recording the same thing again changes nothing. The write that opens a
        request, finishes a check or ends the request is counted and logged
        (`workflows.metrics.request_recorded`), once whoever writes it."""

        def work(session: Session) -> tuple[RequestSnapshot | None, bool, bool]:
            row = session.get(TransitionRequestRow, snapshot.id)
            before = snapshot_of(row) if row is not None else None
            written = ended = False
            if row is None:
                session.add(request_row(snapshot))
                session.flush()
                index_approver_roles(session, snapshot)
                written, ended = True, not snapshot.state.is_open
            elif snapshot.revision > row.revision:
                indexed = (row.state, row.approver_roles)
                if not snapshot.state.is_open:
                    # Only the write that finds the row still open ends it: decided in SQL,
                    # so two writers of the end (API and worker) never both count it.
                    ended = _overwrite(session, snapshot, still_open=True)
                written = ended or _overwrite(session, snapshot, still_open=False)
                if written and indexed != (snapshot.state.value, snapshot.approver_roles):
                    index_approver_roles(session, snapshot)
            add_entries(session, entries)
            return before, written, ended

        # Each IntegrityError means a concurrent writer committed one of these keys first; the
        # retry sees that row and skips it, so one attempt per key (and one more) suffices.
        before, written, ended = await self._db.run(work, attempts=len(entries) + 2)
        if written:
            _observe(before, snapshot, ended=ended)

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
        query = _SEARCHES[(model is not None, version is not None, open_only)]
        params = {"model": model, "version": version, "limit": limit}
        params = {key: value for key, value in params.items() if value is not None}
        return await self._db.run(
            lambda session: [snapshot_of(r) for r in session.exec(query, params=params)]
        )

    async def of_github_run(self, repository_id: str, run_id: str) -> list[RequestSnapshot]:
        """The requests a GitHub Actions run opened (its OIDC token's `repository_id` and
        `run_id`), oldest first."""
        query = (
            select(TransitionRequestRow)
            .where(
                TransitionRequestRow.github_repository_id == repository_id,
                TransitionRequestRow.github_run_id == run_id,
            )
            .order_by(col(TransitionRequestRow.created_ms), col(TransitionRequestRow.id))
        )
        return await self._db.run(lambda session: [snapshot_of(r) for r in session.exec(query)])

    async def entry(self, entry_id: str) -> AuditEntry | None:
        """One audit entry by its id."""

        def work(session: Session) -> AuditEntry | None:
            row = session.get(AuditEntryRow, entry_id)
            return entry_of(row) if row else None

        return await self._db.run(work)

    async def audit_trail(self, model: str, version: str) -> list[AuditEntry]:
        """The audit trail of one model version, oldest first."""
        params = {"model": model, "version": version}
        return await self._db.run(
            lambda session: [entry_of(r) for r in session.exec(_AUDIT_TRAIL, params=params)]
        )

    async def applied_moves(self, model: str, target: str, limit: int = 50) -> list[AuditEntry]:
        """The moves Signoff applied to `target` of `model` (governed or break-glass), newest
        first: the target's history, which a rollback reads."""
        query = (
            select(AuditEntryRow)
            .where(
                AuditEntryRow.model_name == model,
                AuditEntryRow.activity_type == AuditType.APPLIED_TRANSITION.value,
                AuditEntryRow.to_stage == target,
            )
            .order_by(col(AuditEntryRow.created_ms).desc(), col(AuditEntryRow.id).desc())
            .limit(limit)
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


def _overwrite(session: Session, snapshot: RequestSnapshot, *, still_open: bool) -> bool:
    """Replace the stored request by `snapshot` if it is newer (compared in SQL: a newer
    revision may have been committed since the read) and, with `still_open`, only if the
    stored one is open; whether it was replaced."""
    conditions = [
        col(TransitionRequestRow.id) == snapshot.id,
        col(TransitionRequestRow.revision) < snapshot.revision,
    ]
    if still_open:
        conditions.append(col(TransitionRequestRow.state).in_(OPEN_STATES))
    result = session.exec(
        sql_update(TransitionRequestRow)
        .where(*conditions)
        .values(request_row(snapshot).model_dump(exclude={"id"}))
        .execution_options(synchronize_session=False)
    )
    return bool(result.rowcount)


def _observe(before: RequestSnapshot | None, after: RequestSnapshot, *, ended: bool) -> None:
    request_recorded(before, after, ended=ended)
    where = f"{after.model} v{after.version} → {after.target}"
    extra = {"workflow_id": after.workflow_id}
    if before is None:
        log.info("request %s opened: %s", after.id, where, extra=extra)
    if ended:
        why = f" ({after.reason})" if after.reason else ""
        log.info("request %s ended %s: %s%s", after.id, after.state.value, where, why, extra=extra)


# -- mapping (the column names differ from the domain's: model_name, created_ms) -------------


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
        digest=snapshot.digest.model_dump(mode="json") if snapshot.digest else None,
        tags=snapshot.tags or None,
        tier=snapshot.tier or None,
        apply_at_ms=snapshot.apply_at_ms,
        rollback=snapshot.rollback.model_dump(mode="json") if snapshot.rollback else None,
        github_repository_id=snapshot.github.repository_id if snapshot.github else None,
        github_run_id=snapshot.github.run_id if snapshot.github else None,
        github=_github_json(snapshot),
    )


def _github_json(snapshot: RequestSnapshot) -> dict[str, Any] | None:
    if snapshot.github is None:
        return None
    gate = snapshot.github_gate
    return {
        "run": snapshot.github.model_dump(mode="json"),
        "gate": gate.model_dump(mode="json") if gate is not None else None,
    }


def _github_of(row: TransitionRequestRow) -> tuple[GithubRun | None, GithubGate | None]:
    data = row.github or {}
    run, gate = data.get("run"), data.get("gate")
    return (
        GithubRun.model_validate(run) if run else None,
        GithubGate.model_validate(gate) if gate else None,
    )


def snapshot_of(row: TransitionRequestRow) -> RequestSnapshot:
    github, gate = _github_of(row)
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
        digest=ArtifactDigest.model_validate(row.digest) if row.digest else None,
        tags=row.tags or {},
        tier=row.tier or {},
        apply_at_ms=row.apply_at_ms,
        rollback=RollbackMark.model_validate(row.rollback) if row.rollback else None,
        github=github,
        github_gate=gate,
    )
