"""The one module that reads and writes the ledger.

Writes come from workflow activities, which run at least once, so every write is idempotent:
activity rows are keyed by an id the workflow chose, and a request row is only overwritten by
a snapshot with a higher `revision`. The SQL is SQLAlchemy's, so SQLite and PostgreSQL work by
URL alone.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, event, func, or_, text
from sqlalchemy import delete as sql_delete
from sqlalchemy import update as sql_update
from sqlalchemy.engine import make_url
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from workflows.domain import (
    Approval,
    AuditEntry,
    AuditType,
    CheckResult,
    RequestSnapshot,
    RequestState,
)
from workflows.ledger.models import (
    ActivityRow,
    CommentRow,
    InboundHookRow,
    ReconcilerRunRow,
    RegistryMarkRow,
    TransitionRequestRow,
    WebhookDeliveryRow,
    WebhookRow,
)
from workflows.messages import LedgerUpdate

_MIGRATIONS = Path(__file__).parent / "migrations"
_MIGRATION_THREAD_LOCK = threading.Lock()
"""Alembic's `context` is one module-level proxy per process: two threads migrating at once
corrupt each other's (KeyError: 'config')."""
_PG_MIGRATION_LOCK = 7_470_001  # arbitrary constant: serialises concurrent `migrate()` calls
PENDING_GRACE_MS = 10 * 60 * 1000
"""How long a pending mark (a transition Signoff is applying) holds: observations of the version
are left alone meanwhile. A mark pending longer belongs to an apply that never came back."""
OPEN_STATES = [RequestState.PENDING.value, RequestState.APPLYING.value]


def _make_engine(url: str) -> Engine:
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return create_engine(url, pool_pre_ping=True)
    if parsed.database and parsed.database != ":memory:":
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})

    @event.listens_for(engine, "connect")
    def _sqlite_pragmas(dbapi_connection, _record) -> None:  # type: ignore[no-untyped-def]
        # WAL lets the API read while the worker writes; foreign processes share the file.
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    return engine


class Ledger:
    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = _make_engine(url)

    def dispose(self) -> None:
        self.engine.dispose()

    @contextmanager
    def _session(self) -> Iterator[Session]:
        with Session(self.engine, expire_on_commit=False) as session:
            yield session

    # -- schema ---------------------------------------------------------------------------

    def migrate(self) -> None:
        """Bring the schema to the newest migration. Safe to call from every process, and from
        several threads of one (`signoff dev` runs the API and the worker in one process)."""
        with _MIGRATION_THREAD_LOCK:
            self._migrate()

    def _migrate(self) -> None:
        config = Config()
        config.set_main_option("script_location", str(_MIGRATIONS))
        with self.engine.begin() as connection:
            if connection.dialect.name == "postgresql":
                connection.execute(
                    text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_MIGRATION_LOCK}
                )
            config.attributes["connection"] = connection
            command.upgrade(config, "head")

    def ping(self) -> None:
        with self.engine.connect() as connection:
            connection.execute(text("SELECT 1"))

    # -- writes ---------------------------------------------------------------------------

    def record(self, update: LedgerUpdate) -> None:
        """Apply a workflow's update. Replaying the same update changes nothing."""
        # Each IntegrityError means a concurrent writer committed one of this update's keys first;
        # the retry sees that row and skips it, so one attempt per key (and one more) suffices.
        attempts = len(update.entries) + 2
        for attempt in range(attempts):
            try:
                self._record_once(update)
                return
            except IntegrityError:
                if attempt == attempts - 1:
                    raise

    def _record_once(self, update: LedgerUpdate) -> None:
        snapshot = update.snapshot
        with self._session() as session, session.begin():
            row = session.get(TransitionRequestRow, snapshot.id)
            if row is None:
                session.add(_request_row(snapshot))
            elif snapshot.revision > row.revision:
                # Compared again in SQL: a newer revision may have been committed since the read.
                session.exec(
                    sql_update(TransitionRequestRow)
                    .where(
                        col(TransitionRequestRow.id) == snapshot.id,
                        col(TransitionRequestRow.revision) < snapshot.revision,
                    )
                    .values(_request_row(snapshot).model_dump(exclude={"id"}))
                    .execution_options(synchronize_session=False)
                )
            for entry in update.entries:
                if session.get(ActivityRow, entry.id) is None:
                    session.add(_activity_row(entry))

    def append_activities(self, entries: list[AuditEntry]) -> None:
        """Add log lines that belong to no request (break-glass transitions, out-of-band
        changes); keyed by their ids, so adding one again changes nothing."""
        for attempt in range(2):
            try:
                with self._session() as session, session.begin():
                    for entry in entries:
                        if session.get(ActivityRow, entry.id) is None:
                            session.add(_activity_row(entry))
                return
            except IntegrityError:
                if attempt == 1:
                    raise

    # -- comments -------------------------------------------------------------------------
    #
    # A comment is a row of `comments` (its current text) plus one NEW_COMMENT line in the
    # append-only activity log, written in the same transaction. The log line keeps the text
    # as first posted: an edit changes the comment row only, and a deletion removes the row
    # and leaves the log line, so the audit trail still shows what was said and when.

    def add_comment(
        self, comment_id: str, *, model: str, version: str, user_id: str, text: str, now_ms: int
    ) -> CommentRow:
        """Store a new comment and its NEW_COMMENT activity (id `comment-<comment_id>`), at
        `now_ms` or 1 ms after the version's newest comment, whichever is later.
        `comment_id` is the idempotency key: adding it again returns the stored comment and
        writes nothing."""
        for attempt in range(2):
            try:
                with self._session() as session, session.begin():
                    existing = session.get(CommentRow, comment_id)
                    if existing is not None:
                        return existing
                    # Comments are listed oldest first by time: keep each new one after the
                    # version's last, even when two arrive within the same millisecond.
                    latest = session.exec(
                        select(func.max(CommentRow.created_ms)).where(
                            CommentRow.model_name == model, CommentRow.version == version
                        )
                    ).one()
                    if latest is not None and latest >= now_ms:
                        now_ms = latest + 1
                    row = CommentRow(
                        id=comment_id,
                        model_name=model,
                        version=version,
                        user_id=user_id,
                        comment=text,
                        created_ms=now_ms,
                        updated_ms=now_ms,
                    )
                    session.add(row)
                    activity_id = comment_activity_id(comment_id)
                    if session.get(ActivityRow, activity_id) is None:
                        session.add(
                            ActivityRow(
                                id=activity_id,
                                request_id=None,
                                seq=0,
                                model_name=model,
                                version=version,
                                activity_type=AuditType.NEW_COMMENT.value,
                                user_id=user_id,
                                comment=text,
                                created_ms=now_ms,
                                updated_ms=now_ms,
                            )
                        )
                    return row
            except IntegrityError:
                # A concurrent writer stored the same comment id first; the retry returns it.
                if attempt == 1:
                    raise
        raise AssertionError("unreachable")  # pragma: no cover

    def get_comment(self, comment_id: str) -> CommentRow | None:
        with self._session() as session:
            return session.get(CommentRow, comment_id)

    def list_comments(self, model: str, version: str) -> list[CommentRow]:
        """The comments on one model version, oldest first."""
        query = (
            select(CommentRow)
            .where(CommentRow.model_name == model, CommentRow.version == version)
            .order_by(col(CommentRow.created_ms), col(CommentRow.id))
        )
        with self._session() as session:
            return list(session.exec(query))

    def update_comment(self, comment_id: str, *, text: str, now_ms: int) -> CommentRow | None:
        """Replace a comment's text; None when there is no such comment (any more). The
        NEW_COMMENT activity keeps the original text."""
        with self._session() as session, session.begin():
            row = session.get(CommentRow, comment_id, with_for_update=True)
            if row is None:
                return None
            row.comment = text
            row.updated_ms = max(now_ms, row.updated_ms)
            session.add(row)
            return row

    def delete_comment(self, comment_id: str) -> bool:
        """Remove a comment; False when there was none. Its NEW_COMMENT activity stays."""
        with self._session() as session, session.begin():
            result = session.exec(
                sql_delete(CommentRow)
                .where(col(CommentRow.id) == comment_id)
                .execution_options(synchronize_session=False)
            )
            return bool(result.rowcount)

    # -- reads ----------------------------------------------------------------------------

    def get_request(self, request_id: str) -> RequestSnapshot | None:
        with self._session() as session:
            row = session.get(TransitionRequestRow, request_id)
            return _snapshot(row) if row else None

    def list_requests(
        self,
        *,
        model: str | None = None,
        version: str | None = None,
        open_only: bool = False,
        limit: int = 100,
    ) -> list[RequestSnapshot]:
        query = select(TransitionRequestRow)
        if model is not None:
            query = query.where(TransitionRequestRow.model_name == model)
        if version is not None:
            query = query.where(TransitionRequestRow.version == version)
        if open_only:
            query = query.where(col(TransitionRequestRow.state).in_(OPEN_STATES))
        query = query.order_by(col(TransitionRequestRow.created_ms).desc()).limit(limit)
        with self._session() as session:
            return [_snapshot(row) for row in session.exec(query)]

    def list_activities(self, model: str, version: str) -> list[AuditEntry]:
        """The audit trail of one model version, oldest first."""
        query = (
            select(ActivityRow)
            .where(ActivityRow.model_name == model, ActivityRow.version == version)
            .order_by(col(ActivityRow.created_ms), col(ActivityRow.seq), col(ActivityRow.id))
        )
        with self._session() as session:
            return [_entry(row) for row in session.exec(query)]

    def activities_since(self, activity_type: AuditType, since_ms: int) -> list[AuditEntry]:
        """Log lines of one type written at or after `since_ms`, oldest first."""
        query = (
            select(ActivityRow)
            .where(
                ActivityRow.activity_type == activity_type.value,
                col(ActivityRow.created_ms) >= since_ms,
            )
            .order_by(col(ActivityRow.created_ms), col(ActivityRow.id))
        )
        with self._session() as session:
            return [_entry(row) for row in session.exec(query)]

    # -- registry webhooks ------------------------------------------------------------------

    def add_webhook(self, row: WebhookRow) -> WebhookRow:
        with self._session() as session, session.begin():
            session.add(row)
            return row

    def get_webhook(self, webhook_id: str) -> WebhookRow | None:
        with self._session() as session:
            return session.get(WebhookRow, webhook_id)

    def list_webhooks(self, model_name: str | None = None) -> list[WebhookRow]:
        """All webhooks, oldest first; with `model_name`, that model's only."""
        query = select(WebhookRow).order_by(col(WebhookRow.created_ms), col(WebhookRow.id))
        if model_name is not None:
            query = query.where(WebhookRow.model_name == model_name)
        with self._session() as session:
            return list(session.exec(query))

    def update_webhook(self, webhook_id: str, now_ms: int, **changes: Any) -> WebhookRow | None:
        """Set the given columns; None when there is no such webhook."""
        with self._session() as session, session.begin():
            row = session.get(WebhookRow, webhook_id, with_for_update=True)
            if row is None:
                return None
            for name, value in changes.items():
                setattr(row, name, value)
            row.updated_ms = max(now_ms, row.updated_ms)
            session.add(row)
            return row

    def delete_webhook(self, webhook_id: str) -> bool:
        with self._session() as session, session.begin():
            result = session.exec(
                sql_delete(WebhookRow)
                .where(col(WebhookRow.id) == webhook_id)
                .execution_options(synchronize_session=False)
            )
            return bool(result.rowcount)

    def matching_webhooks(
        self, event: str, model_name: str | None, as_of_ms: int | None = None
    ) -> list[WebhookRow]:
        """ACTIVE webhooks subscribed to `event`: the model's own and the registry-wide ones;
        with `as_of_ms`, only those that existed then (an event is not news to a webhook
        subscribed after it happened)."""
        query = select(WebhookRow).where(WebhookRow.status == "ACTIVE")
        if as_of_ms is not None:
            query = query.where(col(WebhookRow.created_ms) <= as_of_ms)
        with self._session() as session:
            rows = list(session.exec(query))
        return [
            row
            for row in rows
            if event in (row.events or []) and row.model_name in (None, model_name)
        ]

    def add_delivery(
        self, delivery_id: str, *, webhook_id: str, event: str, payload: dict[str, Any], now_ms: int
    ) -> WebhookDeliveryRow:
        """Idempotent by `delivery_id`: adding it again returns the stored delivery."""
        for attempt in range(2):
            try:
                with self._session() as session, session.begin():
                    existing = session.get(WebhookDeliveryRow, delivery_id)
                    if existing is not None:
                        return existing
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
                    return row
            except IntegrityError:
                if attempt == 1:
                    raise
        raise AssertionError("unreachable")  # pragma: no cover

    def get_delivery(self, delivery_id: str) -> WebhookDeliveryRow | None:
        with self._session() as session:
            return session.get(WebhookDeliveryRow, delivery_id)

    def list_deliveries(self, webhook_id: str) -> list[WebhookDeliveryRow]:
        """A webhook's deliveries, newest first."""
        query = (
            select(WebhookDeliveryRow)
            .where(WebhookDeliveryRow.webhook_id == webhook_id)
            .order_by(col(WebhookDeliveryRow.created_ms).desc(), col(WebhookDeliveryRow.id))
        )
        with self._session() as session:
            return list(session.exec(query))

    def record_attempt(
        self, delivery_id: str, attempt: dict[str, Any], *, state: str, now_ms: int
    ) -> None:
        """Add one attempt (idempotent by its `attempt` number) and set the delivery's state."""
        with self._session() as session, session.begin():
            row = session.get(WebhookDeliveryRow, delivery_id, with_for_update=True)
            if row is None:
                return
            attempts = [a for a in (row.attempts or []) if a["attempt"] != attempt["attempt"]]
            row.attempts = sorted([*attempts, attempt], key=lambda a: a["attempt"])
            row.state = state
            row.updated_ms = max(now_ms, row.updated_ms)
            session.add(row)

    def set_delivery_state(self, delivery_id: str, state: str, now_ms: int) -> None:
        with self._session() as session, session.begin():
            row = session.get(WebhookDeliveryRow, delivery_id, with_for_update=True)
            if row is not None:
                row.state = state
                row.updated_ms = max(now_ms, row.updated_ms)
                session.add(row)

    # -- inbound webhooks -------------------------------------------------------------------

    def claim_inbound(self, row: InboundHookRow, *, stale_after_ms: int = 120_000) -> bool:
        """Record a verified inbound message under its `claim`; False when that claim is taken
        already, i.e. the message is a replay and must do nothing. A claim still `PROCESSING`
        after `stale_after_ms` belongs to a process that died mid-message: it is taken over,
        so the sender's retry is processed rather than refused for good."""
        for attempt in range(2):
            try:
                with self._session() as session, session.begin():
                    held = session.exec(
                        select(InboundHookRow)
                        .where(InboundHookRow.claim == row.claim)
                        .with_for_update()
                    ).first()
                    if held is not None:
                        if held.outcome != "PROCESSING" or (
                            row.received_ms - held.received_ms < stale_after_ms
                        ):
                            return False
                        held.claim, held.outcome = None, "ERROR"
                        held.reason = "abandoned: the process handling it stopped"
                        session.add(held)
                        session.flush()
                    session.add(row)
                return True
            except IntegrityError:
                if attempt == 1:
                    return False
        return False  # pragma: no cover

    def record_inbound(self, row: InboundHookRow) -> None:
        """Record an inbound message refused before it could claim anything."""
        row.claim = None
        with self._session() as session, session.begin():
            session.add(row)

    def finish_inbound(
        self, row_id: str, *, outcome: str, reason: str | None, **fields: Any
    ) -> None:
        """Set the outcome of a claimed message. An outcome of `ERROR` (Signoff could not act on
        it just now) gives the claim back, so the sender's retry is processed, not dropped."""
        with self._session() as session, session.begin():
            row = session.get(InboundHookRow, row_id, with_for_update=True)
            if row is None:
                return
            row.outcome = outcome
            row.reason = reason
            if outcome == "ERROR":
                row.claim = None
            for name, value in fields.items():
                setattr(row, name, value)
            session.add(row)

    def list_inbound(self, source: str | None = None, limit: int = 100) -> list[InboundHookRow]:
        """Inbound messages, newest first; with `source`, that source's only."""
        query = select(InboundHookRow).order_by(
            col(InboundHookRow.received_ms).desc(), col(InboundHookRow.id)
        )
        if source is not None:
            query = query.where(InboundHookRow.source == source)
        with self._session() as session:
            return list(session.exec(query.limit(limit)))

    # -- registry marks: what Signoff expects MLflow to show --------------------------------
    #
    # A transition Signoff applies is marked pending (with its target) before MLflow is
    # called and applied after, so an observation made in between (MLflow's own webhook, the
    # reconciler) is recognised as Signoff's. Out-of-band changes, once recorded, are marked
    # as observed, so each is reported once.

    def get_mark(self, model: str, version: str) -> RegistryMarkRow | None:
        with self._session() as session:
            return session.get(RegistryMarkRow, (model, version))

    def model_marks(self, model: str) -> list[RegistryMarkRow]:
        query = select(RegistryMarkRow).where(RegistryMarkRow.model_name == model)
        with self._session() as session:
            return list(session.exec(query))

    def mark_pending(
        self,
        model: str,
        version: str,
        *,
        request_id: str,
        target: str,
        stage: str,
        now_ms: int,
        exclusive: bool = False,
    ) -> bool:
        """Signoff is about to move the version (currently in `stage`) to `target`. With
        `exclusive`, only if no other move of the version holds the mark (one not yet stale):
        False then, and nothing changes. One conditional UPDATE, so two callers cannot both
        win, on SQLite as on PostgreSQL."""
        free = or_(
            col(RegistryMarkRow.pending_request).is_(None),
            col(RegistryMarkRow.pending_request) == request_id,
            col(RegistryMarkRow.pending_ms) <= now_ms - PENDING_GRACE_MS,
        )
        for attempt in range(2):
            try:
                with self._session() as session, session.begin():
                    query = sql_update(RegistryMarkRow).where(
                        col(RegistryMarkRow.model_name) == model,
                        col(RegistryMarkRow.version) == version,
                    )
                    if exclusive:
                        query = query.where(free)
                    result = session.exec(
                        query.values(
                            pending_request=request_id, pending_target=target, pending_ms=now_ms
                        ).execution_options(synchronize_session=False)
                    )
                    if result.rowcount:
                        return True
                    if session.get(RegistryMarkRow, (model, version)) is not None:
                        return False  # held by another move
                    session.add(
                        RegistryMarkRow(
                            model_name=model,
                            version=version,
                            stage=stage,
                            aliases=[],
                            pending_request=request_id,
                            pending_target=target,
                            pending_ms=now_ms,
                            updated_ms=now_ms,
                        )
                    )
                return True
            except IntegrityError:  # created concurrently: the UPDATE decides on the retry
                if attempt == 1:
                    raise
        return False  # pragma: no cover

    def mark_applied(
        self,
        model: str,
        version: str,
        *,
        target: str,
        archive_others: bool,
        now_ms: int,
        request_id: str | None = None,
    ) -> None:
        """Signoff moved the version to `target` (an alias `@name` or a stage): expect that,
        and for other versions what MLflow did alongside (an alias moves off them; with
        `archive_others` they leave the stage for Archived)."""
        with self._session() as session, session.begin():
            rows = {
                row.version: row
                for row in session.exec(
                    select(RegistryMarkRow)
                    .where(RegistryMarkRow.model_name == model)
                    .with_for_update()
                )
            }
            row = rows.get(version) or RegistryMarkRow(
                model_name=model, version=version, aliases=[], updated_ms=now_ms
            )
            if target.startswith("@"):
                alias = target[1:]
                for other in rows.values():
                    if other.version != version and alias in (other.aliases or []):
                        other.aliases = [a for a in other.aliases if a != alias]
                        session.add(other)
                row.aliases = sorted({*(row.aliases or []), alias})
            else:
                if archive_others and target in ("Staging", "Production"):
                    for other in rows.values():
                        if other.version != version and other.stage == target:
                            other.stage = "Archived"
                            session.add(other)
                row.stage = target
            if request_id is None or row.pending_request == request_id:
                row.pending_request = row.pending_target = row.pending_ms = None
            row.updated_ms = now_ms
            session.add(row)

    def clear_pending(self, model: str, version: str, request_id: str) -> None:
        """The transition `request_id` will not happen (MLflow refused it)."""
        with self._session() as session, session.begin():
            row = session.get(RegistryMarkRow, (model, version), with_for_update=True)
            if row is not None and row.pending_request == request_id:
                row.pending_request = row.pending_target = row.pending_ms = None
                session.add(row)

    def mark_observed(
        self, model: str, version: str, *, stage: str, aliases: list[str], now_ms: int
    ) -> None:
        """Expect what MLflow shows now (a baseline, or an out-of-band change just recorded).
        An alias lives on one version, so it is taken off the model's other versions."""
        with self._session() as session, session.begin():
            for other in session.exec(
                select(RegistryMarkRow).where(
                    RegistryMarkRow.model_name == model, RegistryMarkRow.version != version
                )
            ):
                if set(other.aliases or []) & set(aliases):
                    other.aliases = [a for a in other.aliases if a not in aliases]
                    session.add(other)
            row = session.get(RegistryMarkRow, (model, version), with_for_update=True)
            if row is None:
                row = RegistryMarkRow(model_name=model, version=version, updated_ms=now_ms)
            row.stage, row.aliases, row.updated_ms = stage, sorted(aliases), now_ms
            if row.pending_ms is not None and now_ms - row.pending_ms >= PENDING_GRACE_MS:
                # An apply that never came back: what MLflow shows now is the record.
                row.pending_request = row.pending_target = row.pending_ms = None
            session.add(row)

    def all_marks(self) -> dict[tuple[str, str], RegistryMarkRow]:
        with self._session() as session:
            return {(r.model_name, r.version): r for r in session.exec(select(RegistryMarkRow))}

    # -- reconciler runs ------------------------------------------------------------------

    def add_reconciler_run(self, row: ReconcilerRunRow) -> None:
        with self._session() as session, session.begin():
            session.add(row)

    def list_reconciler_runs(self, limit: int = 20) -> list[ReconcilerRunRow]:
        """The newest passes first."""
        query = select(ReconcilerRunRow).order_by(col(ReconcilerRunRow.started_ms).desc())
        with self._session() as session:
            return list(session.exec(query.limit(limit)))


def comment_activity_id(comment_id: str) -> str:
    """The id of the NEW_COMMENT activity that records a comment."""
    return f"comment-{comment_id}"


def _request_row(snapshot: RequestSnapshot) -> TransitionRequestRow:
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
    )


def _snapshot(row: TransitionRequestRow) -> RequestSnapshot:
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
    )


def _activity_row(entry: AuditEntry) -> ActivityRow:
    return ActivityRow(
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
    )


def _entry(row: ActivityRow) -> AuditEntry:
    return AuditEntry(
        id=row.id,
        request_id=row.request_id or "",
        seq=row.seq,
        model=row.model_name,
        version=row.version,
        activity_type=row.activity_type,
        user_id=row.user_id,
        from_stage=row.from_stage,
        to_stage=row.to_stage,
        comment=row.comment,
        system_comment=row.system_comment,
        creation_timestamp=row.created_ms,
    )
