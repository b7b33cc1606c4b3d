"""The ledger (`workflows.ledger.Ledger` and its repositories) on a real SQLite file and a real
PostgreSQL database: schema migration, idempotent writes from at-least-once activities, and the
queries the API serves. Every test runs on both databases through the `ledger_url` / `ledger`
fixtures."""

from __future__ import annotations

import asyncio
import contextvars
import itertools
import random
import threading
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import event, inspect, text
from sqlmodel import SQLModel

import workflows.ledger.engine as ledger_engine
from workflows.domain import (
    Approval,
    AuditEntry,
    AuditType,
    CheckResult,
    CheckStatus,
    RequestSnapshot,
    RequestState,
)
from workflows.ledger import Ledger, comment_entry_id
from workflows.ledger.engine import engine_url
from workflows.messages import LedgerUpdate

MIGRATIONS = Path(ledger_engine.__file__).parent / "migrations"
LEDGER_TABLES = {
    "transition_requests",
    "activities",
    "comments",
    "webhooks",
    "webhook_deliveries",
    "inbound_hooks",
    "registry_marks",
    "reconciler_runs",
    "web_logins",
    "web_sessions",
    "audit_chain",
    "audit_anchors",
    "request_approver_roles",
    "slack_messages",
    "deployment_gates",
    "break_glass_reviews",
    "pinned_policies",
}
T0 = 1_700_000_000_000  # epoch ms
SLOW_WRITER: contextvars.ContextVar[bool] = contextvars.ContextVar("slow_writer", default=False)


# --------------------------------------------------------------------------------------------
# Builders
# --------------------------------------------------------------------------------------------


def snapshot(
    request_id: str = "req-1",
    *,
    model: str = "fraud-detector",
    version: str = "7",
    target: str = "Production",
    revision: int = 0,
    state: RequestState = RequestState.PENDING,
    created_ms: int = T0,
    **changes: Any,
) -> RequestSnapshot:
    fields: dict[str, Any] = {
        "id": request_id,
        "workflow_id": f"transition/{model}/{version}/{target}",
        "run_id": "run-0001",
        "model": model,
        "version": version,
        "target": target,
        "from_stage": "Staging",
        "requester": "alice@example.com",
        "comment": "ready for prod",
        "state": state,
        "policy_hash": "a" * 64,
        "quorum": 2,
        "checks": [CheckResult(check_id="metric:auc", type="metric", status=CheckStatus.RUNNING)],
        "revision": revision,
        "created_ms": created_ms,
        "updated_ms": created_ms + revision,
    }
    return RequestSnapshot(**(fields | changes))


def activity(
    request_id: str = "req-1",
    seq: int = 0,
    *,
    model: str = "fraud-detector",
    version: str = "7",
    activity_type: AuditType = AuditType.REQUESTED_TRANSITION,
    timestamp: int | None = None,
    **changes: Any,
) -> AuditEntry:
    fields: dict[str, Any] = {
        "id": f"{request_id}-{seq}",
        "request_id": request_id,
        "seq": seq,
        "model": model,
        "version": version,
        "activity_type": activity_type,
        "user_id": "alice@example.com",
        "from_stage": "Staging",
        "to_stage": "Production",
        "comment": None,
        "system_comment": None,
        "creation_timestamp": T0 + seq if timestamp is None else timestamp,
    }
    return AuditEntry(**(fields | changes))


def count_rows(ledger: Ledger, table: str) -> int:
    with ledger.engine.connect() as connection:
        return connection.execute(text(f"SELECT COUNT(*) FROM {table}")).scalar_one()  # noqa: S608


async def run_concurrently(
    count: int, target: Callable[[int], Awaitable[object]], timeout: float = 60.0
) -> None:
    """Run `target(i)` for `count` values of `i` at once, released together (each ledger call
    runs in a worker thread of its own); re-raise the first failure. A deadlock fails the test
    after `timeout` instead of hanging the run."""
    barrier = asyncio.Barrier(count)

    async def start(i: int) -> None:
        await barrier.wait()
        await target(i)

    async with asyncio.timeout(timeout):
        await asyncio.gather(*(start(i) for i in range(count)))


def head_revision() -> str:
    head = ScriptDirectory(str(MIGRATIONS)).get_current_head()
    assert head is not None
    return head


def schema_state(url: str) -> tuple[set[str], list[str], list[Any]]:
    """(tables, alembic_version rows, differences between the models and the database)."""
    ledger = Ledger(url)
    try:
        with ledger.engine.connect() as connection:
            tables = set(inspect(connection).get_table_names())
            versions = (
                list(connection.execute(text("SELECT version_num FROM alembic_version")).scalars())
                if "alembic_version" in tables
                else []
            )
            diff = compare_metadata(MigrationContext.configure(connection), SQLModel.metadata)
        return tables, versions, diff
    finally:
        ledger.dispose()


# --------------------------------------------------------------------------------------------
# Schema
# --------------------------------------------------------------------------------------------


async def test_migrate_creates_schema_on_empty_database(ledger_url: str) -> None:
    assert schema_state(ledger_url)[0] == set()

    ledger = Ledger(ledger_url)
    try:
        await ledger.migrate()
        await ledger.ping()
    finally:
        ledger.dispose()

    tables, versions, diff = schema_state(ledger_url)
    assert tables == LEDGER_TABLES | {"alembic_version"}
    assert versions == [head_revision()]
    assert diff == [], "the migrations and the SQLModel tables disagree"


async def test_migrate_again_is_a_noop_and_keeps_data(ledger: Ledger) -> None:
    await ledger.requests.record(snapshot=snapshot(), entries=[activity()])

    await ledger.migrate()
    again = Ledger(ledger.url)  # a second process starting up against the same database
    try:
        await again.migrate()
        assert await again.requests.get("req-1") == snapshot()
    finally:
        again.dispose()

    tables, versions, diff = schema_state(ledger.url)
    assert tables == LEDGER_TABLES | {"alembic_version"}
    assert versions == [head_revision()]
    assert diff == []
    assert await ledger.requests.audit_trail("fraud-detector", "7") == [activity()]


async def test_migrate_from_several_starters(ledger_url: str) -> None:
    """API and worker both migrate at start-up, as threads of one process under `signoff dev`.
    Alembic keeps one context per process, so they take turns in-process; on PostgreSQL the
    advisory lock also serialises separate processes."""
    starters = [Ledger(ledger_url) for _ in range(4)]
    try:
        await run_concurrently(len(starters), lambda i: starters[i].migrate())
    finally:
        for starter in starters:
            starter.dispose()

    tables, versions, diff = schema_state(ledger_url)
    assert tables == LEDGER_TABLES | {"alembic_version"}
    assert versions == [head_revision()]
    assert diff == []


# --------------------------------------------------------------------------------------------
# record(): idempotent writes
# --------------------------------------------------------------------------------------------


async def test_record_new_request_with_activities(ledger: Ledger) -> None:
    update = LedgerUpdate(
        snapshot=snapshot(),
        entries=[activity(seq=0), activity(seq=1, activity_type=AuditType.NEW_COMMENT)],
    )

    await ledger.requests.record(snapshot=update.snapshot, entries=update.entries)

    assert await ledger.requests.get("req-1") == update.snapshot
    assert await ledger.requests.audit_trail("fraud-detector", "7") == update.entries


async def test_record_same_update_twice_changes_nothing(ledger: Ledger) -> None:
    update = LedgerUpdate(
        snapshot=snapshot(revision=3),
        entries=[activity(seq=0), activity(seq=1, activity_type=AuditType.APPROVED_REQUEST)],
    )

    await ledger.requests.record(snapshot=update.snapshot, entries=update.entries)
    await ledger.requests.record(
        snapshot=update.snapshot, entries=update.entries
    )  # the activity was retried after its first attempt wrote

    assert count_rows(ledger, "transition_requests") == 1
    assert count_rows(ledger, "activities") == 2
    assert await ledger.requests.get("req-1") == update.snapshot
    assert await ledger.requests.audit_trail("fraud-detector", "7") == update.entries


async def test_activity_ids_are_write_once(ledger: Ledger) -> None:
    """The log is append-only: a replay carrying a different body for a known id (or an
    older snapshot) does not rewrite history."""
    first = activity(seq=0, comment="first")
    await ledger.requests.record(snapshot=snapshot(revision=1), entries=[first])

    await ledger.requests.record(
        snapshot=snapshot(revision=1), entries=[first.model_copy(update={"comment": "x"})]
    )

    assert await ledger.requests.audit_trail("fraud-detector", "7") == [first]


async def test_older_revision_does_not_overwrite_newer(ledger: Ledger) -> None:
    newer = snapshot(revision=5, state=RequestState.APPLIED, reason=None)
    older = snapshot(revision=2, state=RequestState.PENDING)
    await ledger.requests.record(snapshot=newer, entries=[activity(seq=0)])

    # A delayed retry of an earlier write lands late; its new activity still counts.
    await ledger.requests.record(snapshot=older, entries=[activity(seq=0), activity(seq=1)])
    # The API's own opening write (revision 0) after the workflow's first writes.
    await ledger.requests.record(snapshot=snapshot(revision=0))

    stored = await ledger.requests.get("req-1")
    assert stored == newer
    assert stored is not None and stored.state is RequestState.APPLIED
    assert [a.id for a in await ledger.requests.audit_trail("fraud-detector", "7")] == [
        "req-1-0",
        "req-1-1",
    ]


async def test_equal_revision_does_not_overwrite(ledger: Ledger) -> None:
    await ledger.requests.record(snapshot=snapshot(revision=4, state=RequestState.APPLYING))
    await ledger.requests.record(snapshot=snapshot(revision=4, state=RequestState.PENDING))

    stored = await ledger.requests.get("req-1")
    assert stored is not None and stored.state is RequestState.APPLYING


async def test_newer_revision_overwrites_state_reason_checks_and_approvals(ledger: Ledger) -> None:
    await ledger.requests.record(snapshot=snapshot(revision=1), entries=[activity(seq=0)])
    evidence: dict[str, Any] = {
        "metric": "auc",
        "value": 0.8731,
        "threshold": 0.8,
        "passed": True,
        "missing": None,
        "runs": ["r1", "r2"],
        "nested": {"url": "https://ci.example/run/42?x=1&y=2", "attempts": [1, 2, 3]},
        "note": "naïve “quoted” ✓ 'single' \"double\" \\ back",
        "big": 2**53,
    }
    newer = snapshot(
        revision=6,
        state=RequestState.FAILED_VALIDATION,
        reason="check metric:auc failed: 0.61 < 0.80",
        run_id="run-0002",
        updated_ms=T0 + 9_999,
        checks=[
            CheckResult(
                check_id="metric:auc",
                type="metric",
                status=CheckStatus.FAILED,
                summary="auc 0.61 < 0.80",
                evidence=evidence,
                finished_ms=T0 + 5_000,
            ),
            CheckResult(
                check_id="tag:validated_by",
                type="tag",
                status=CheckStatus.CANCELLED,
                evidence={},
            ),
        ],
        approvals=[
            Approval(user_id="bob@example.com", creation_timestamp=T0 + 100, comment="lgtm"),
            Approval(user_id="carol@example.com", creation_timestamp=T0 + 200),
        ],
    )

    await ledger.requests.record(
        snapshot=newer,
        entries=[activity(seq=1, activity_type=AuditType.APPROVED_REQUEST)],
    )

    stored = await ledger.requests.get("req-1")
    assert stored == newer
    assert stored is not None
    assert stored.checks[0].evidence == evidence
    assert type(stored.checks[0].evidence["big"]) is int
    assert stored.approvals[1].comment is None
    assert count_rows(ledger, "transition_requests") == 1
    assert [a.seq for a in await ledger.requests.audit_trail("fraud-detector", "7")] == [0, 1]

    # And it can be cleared again by a still newer revision.
    cleared = newer.model_copy(
        update={"revision": 7, "reason": None, "approvals": [], "checks": []}
    )
    await ledger.requests.record(snapshot=cleared)
    assert await ledger.requests.get("req-1") == cleared


# --------------------------------------------------------------------------------------------
# record(): concurrency
# --------------------------------------------------------------------------------------------


async def test_concurrent_overlapping_records(ledger: Ledger) -> None:
    """Retried activities and the API's opening write race on the same keys. Whatever the
    interleaving: no error escapes, one row per request at the highest revision recorded, every
    activity exactly once."""
    requests = ["req-a", "req-b", "req-c"]
    revisions = 8
    updates = [
        LedgerUpdate(
            snapshot=snapshot(
                request_id,
                version=str(index),
                revision=revision,
                state=RequestState.APPLIED if revision == revisions - 1 else RequestState.PENDING,
                reason=f"rev {revision}",
            ),
            # Each batch carries its own activity and the one before (a replay).
            entries=[
                activity(request_id, seq, version=str(index))
                for seq in (revision - 1, revision)
                if seq >= 0
            ],
        )
        for index, request_id in enumerate(requests)
        for revision in range(revisions)
    ]
    threads = 8
    rounds = 4

    async def writer(i: int) -> None:
        rng = random.Random(i)  # every thread writes every update, each in its own order
        for _ in range(rounds):
            batch = updates[:]
            rng.shuffle(batch)
            for update in batch:
                await ledger.requests.record(snapshot=update.snapshot, entries=update.entries)

    await run_concurrently(threads, writer)

    assert count_rows(ledger, "transition_requests") == len(requests)
    assert count_rows(ledger, "activities") == len(requests) * revisions
    for index, request_id in enumerate(requests):
        stored = await ledger.requests.get(request_id)
        assert stored is not None
        assert (stored.revision, stored.state, stored.reason) == (
            revisions - 1,
            RequestState.APPLIED,
            f"rev {revisions - 1}",
        )
        entries = await ledger.requests.audit_trail("fraud-detector", str(index))
        assert [e.id for e in entries] == [f"{request_id}-{seq}" for seq in range(revisions)]


async def test_concurrent_revisions_keep_the_highest(ledger: Ledger) -> None:
    """Writers of different revisions of one request racing: the newest always wins, never a
    slower writer of an older revision that read the row before the newest committed."""
    await ledger.requests.record(snapshot=snapshot(revision=0))
    threads = 8
    counter = itertools.count(1)
    highest = 0

    async def writer(_: int) -> None:
        nonlocal highest
        for _ in range(25):
            revision = next(counter)  # one event loop: no lock needed between the writers
            highest = max(highest, revision)
            await ledger.requests.record(
                snapshot=snapshot(revision=revision, reason=f"rev {revision}")
            )

    await run_concurrently(threads, writer)

    stored = await ledger.requests.get("req-1")
    assert stored is not None
    assert (stored.revision, stored.reason) == (highest, f"rev {highest}")


async def test_slow_writer_of_older_revision_loses(ledger: Ledger) -> None:
    """The interleaving that at-least-once activities make possible, forced: a writer of
    revision 2 reads the row (revision 1), stalls just before writing, and a writer of revision 3
    commits meanwhile. The stalled write must not bring revision 2 back."""
    await ledger.requests.record(snapshot=snapshot(revision=1))
    newer_committed = threading.Event()

    def write_newer() -> None:  # another writer, on an event loop and a thread of its own
        asyncio.run(
            ledger.requests.record(snapshot=snapshot(revision=3, state=RequestState.APPLIED))
        )

    def stall(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        is_write = statement.lstrip().upper().startswith(("UPDATE", "INSERT"))
        if SLOW_WRITER.get() and is_write and not newer_committed.is_set():
            fast = threading.Thread(target=write_newer)
            fast.start()
            fast.join(timeout=3)  # a correct store may make it wait for the slow writer
            newer_committed.set()

    event.listen(ledger.engine, "before_cursor_execute", stall)
    token = SLOW_WRITER.set(True)  # the ledger's worker thread runs in a copy of this context
    try:
        await ledger.requests.record(snapshot=snapshot(revision=2, reason="stale"))
    finally:
        SLOW_WRITER.reset(token)
        event.remove(ledger.engine, "before_cursor_execute", stall)
    assert newer_committed.is_set(), "the slow writer never wrote"

    stored = await ledger.requests.get("req-1")
    assert stored is not None
    assert (stored.revision, stored.state, stored.reason) == (3, RequestState.APPLIED, None)


# --------------------------------------------------------------------------------------------
# Queries
# --------------------------------------------------------------------------------------------


async def test_list_activities_oldest_first_across_requests(ledger: Ledger) -> None:
    # Two requests on fraud-detector v7, written out of order; ties on the timestamp fall back
    # to seq.
    first = [
        activity("req-1", 0, timestamp=T0 + 10),
        activity("req-1", 1, timestamp=T0 + 30, activity_type=AuditType.REJECTED_REQUEST),
    ]
    second = [
        activity("req-2", 0, timestamp=T0 + 20),
        activity("req-2", 2, timestamp=T0 + 40, activity_type=AuditType.APPROVED_REQUEST),
        activity("req-2", 1, timestamp=T0 + 40, activity_type=AuditType.NEW_COMMENT),
    ]
    await ledger.requests.record(snapshot=snapshot("req-2", created_ms=T0 + 20), entries=second)
    await ledger.requests.record(snapshot=snapshot("req-1"), entries=first)
    # Noise: the same model at another version, another model at the same version.
    await ledger.requests.record(
        snapshot=snapshot("req-3", version="8"),
        entries=[activity("req-3", 0, version="8", timestamp=T0)],
    )
    await ledger.requests.record(
        snapshot=snapshot("req-4", model="churn"),
        entries=[activity("req-4", 0, model="churn", timestamp=T0 + 15)],
    )

    entries = await ledger.requests.audit_trail("fraud-detector", "7")

    assert [e.id for e in entries] == ["req-1-0", "req-2-0", "req-1-1", "req-2-1", "req-2-2"]
    assert entries == sorted(first + second, key=lambda e: (e.creation_timestamp, e.seq))
    assert [e.id for e in await ledger.requests.audit_trail("fraud-detector", "8")] == ["req-3-0"]
    assert [e.id for e in await ledger.requests.audit_trail("churn", "7")] == ["req-4-0"]
    assert await ledger.requests.audit_trail("fraud-detector", "9") == []
    assert await ledger.requests.audit_trail("fraud", "7") == []


async def test_list_requests_filters_and_newest_first(ledger: Ledger) -> None:
    rows = [
        snapshot("r-old-applied", created_ms=T0 + 1, state=RequestState.APPLIED, revision=4),
        snapshot("r-pending", created_ms=T0 + 5),
        snapshot("r-applying", created_ms=T0 + 3, state=RequestState.APPLYING, revision=3),
        snapshot("r-rejected", created_ms=T0 + 4, state=RequestState.REJECTED, revision=2),
        snapshot("r-v8", version="8", created_ms=T0 + 6),
        snapshot("r-churn", model="churn", created_ms=T0 + 7, state=RequestState.EXPIRED),
        snapshot("r-churn-open", model="churn", created_ms=T0 + 2),
    ]
    for row in rows:
        await ledger.requests.record(snapshot=row)

    async def ids(**filters: Any) -> list[str]:
        return [r.id for r in await ledger.requests.search(**filters)]

    assert await ids(model="fraud-detector", version="7") == [
        "r-pending",
        "r-rejected",
        "r-applying",
        "r-old-applied",
    ]
    assert await ids(model="fraud-detector", version="7", open_only=True) == [
        "r-pending",
        "r-applying",
    ]
    assert await ids(model="fraud-detector") == [
        "r-v8",
        "r-pending",
        "r-rejected",
        "r-applying",
        "r-old-applied",
    ]
    assert await ids(model="churn", open_only=True) == ["r-churn-open"]
    assert await ids(open_only=True) == ["r-v8", "r-pending", "r-applying", "r-churn-open"]
    assert await ids() == [r.id for r in sorted(rows, key=lambda r: r.created_ms, reverse=True)]
    assert await ids(limit=2) == ["r-churn", "r-v8"]
    assert await ids(model="fraud-detector", version="9") == []
    assert await ids(model="nobody") == []
    assert await ledger.requests.search(model="churn", version="7") == [rows[5], rows[6]]


async def test_get_request_unknown_id(ledger: Ledger) -> None:
    assert await ledger.requests.get("no-such-request") is None
    await ledger.requests.record(snapshot=snapshot("req-1"))
    assert await ledger.requests.get("req-2") is None
    assert await ledger.requests.get("REQ-1") is None
    assert await ledger.requests.get("req-%") is None


# --------------------------------------------------------------------------------------------
# Awkward values
# --------------------------------------------------------------------------------------------

AWKWARD = [
    'it\'s "quoted"',
    "Robert'); DROP TABLE activities;--",
    "modèle-détection-🚀-模型",
    "100%_match\\back\\slash",
    "semi;colon -- comment /* block */ $1 :name ? %s %(x)s",
    "line\nbreak\ttab",
]
AWKWARD_VERSION = "v'7\";--"


@pytest.mark.parametrize("value", AWKWARD, ids=range(len(AWKWARD)))
async def test_awkward_values_round_trip_unchanged(ledger: Ledger, value: str) -> None:
    request = snapshot(
        "req-awkward",
        model=value,
        version=AWKWARD_VERSION,
        target="@champion",
        requester=f"{value}@example.com",
        comment=value,
        reason=value,
        approvals=[Approval(user_id=value, creation_timestamp=T0, comment=value)],
        checks=[
            CheckResult(
                check_id=value,
                type="http",
                status=CheckStatus.PASSED,
                summary=value,
                evidence={value: value, "list": [value]},
            )
        ],
        revision=1,
    )
    entries = [
        activity(
            "req-awkward",
            0,
            model=value,
            version=AWKWARD_VERSION,
            user_id=value,
            comment=value,
            system_comment=value,
        ),
        activity(
            "req-awkward",
            1,
            model=value,
            version=AWKWARD_VERSION,
            activity_type=AuditType.NEW_COMMENT,
        ),
    ]
    # Another model on the same version: it must stay out of every answer.
    await ledger.requests.record(
        snapshot=snapshot("req-other", model="other", version=AWKWARD_VERSION),
        entries=[activity("req-other", 0, model="other", version=AWKWARD_VERSION)],
    )

    await ledger.requests.record(snapshot=request, entries=entries)

    assert await ledger.requests.get("req-awkward") == request
    assert await ledger.requests.search(model=value) == [request]
    assert await ledger.requests.search(model=value, version=AWKWARD_VERSION, open_only=True) == [
        request
    ]
    assert await ledger.requests.audit_trail(value, AWKWARD_VERSION) == entries
    assert count_rows(ledger, "activities") == 3
    assert schema_state(ledger.url)[0] == LEDGER_TABLES | {"alembic_version"}

    # The overwrite by a newer revision carries them as well.
    newer = request.model_copy(
        update={"revision": 2, "reason": f"{value} (2)", "state": RequestState.REJECTED}
    )
    await ledger.requests.record(snapshot=newer, entries=entries)
    assert await ledger.requests.get("req-awkward") == newer
    assert await ledger.requests.search(model=value, version=AWKWARD_VERSION) == [newer]
    assert await ledger.requests.audit_trail(value, AWKWARD_VERSION) == entries


# --------------------------------------------------------------------------------------------
# Comments
# --------------------------------------------------------------------------------------------


async def add_comment(
    ledger: Ledger, comment_id: str, text: str = "looks good", **changes: Any
) -> Any:
    fields: dict[str, Any] = {
        "model": "fraud-detector",
        "version": "7",
        "user_id": "alice@example.com",
        "text": text,
        "now_ms": T0,
    }
    return await ledger.comments.add(comment_id=comment_id, **(fields | changes))


async def test_add_comment_stores_row_and_new_comment_activity(ledger: Ledger) -> None:
    row = await add_comment(ledger, "c1", "first look: AUC holds up")

    assert (row.id, row.model_name, row.version) == ("c1", "fraud-detector", "7")
    assert (row.user_id, row.comment) == ("alice@example.com", "first look: AUC holds up")
    assert (row.created_ms, row.updated_ms) == (T0, T0)
    assert await ledger.comments.get("c1") == row
    [entry] = await ledger.requests.audit_trail("fraud-detector", "7")
    assert entry.id == comment_entry_id("c1")
    assert entry.activity_type is AuditType.NEW_COMMENT
    assert (entry.user_id, entry.comment) == ("alice@example.com", "first look: AUC holds up")
    assert entry.creation_timestamp == T0


async def test_add_comment_twice_with_same_id_writes_once(ledger: Ledger) -> None:
    first = await add_comment(ledger, "c1", "original")
    again = await add_comment(ledger, "c1", "a retry with other text", now_ms=T0 + 5)

    assert again == first
    assert count_rows(ledger, "comments") == 1
    assert count_rows(ledger, "activities") == 1


async def test_concurrent_adds_of_one_comment_write_once(ledger: Ledger) -> None:
    await run_concurrently(8, lambda _i: add_comment(ledger, "c-race", "same"))

    assert count_rows(ledger, "comments") == 1
    assert count_rows(ledger, "activities") == 1


async def test_list_comments_oldest_first_for_that_version_only(ledger: Ledger) -> None:
    await add_comment(ledger, "c-3", "first", now_ms=T0)
    await add_comment(ledger, "c-1", "second", now_ms=T0 + 10)
    await add_comment(ledger, "c-2", "third", now_ms=T0 + 20)
    await add_comment(ledger, "c-other-version", "elsewhere", version="8")
    await add_comment(ledger, "c-other-model", "elsewhere", model="other")

    listed = await ledger.comments.on_version("fraud-detector", "7")
    assert [row.comment for row in listed] == ["first", "second", "third"]
    assert [row.comment for row in await ledger.comments.on_version("fraud-detector", "8")] == [
        "elsewhere"
    ]
    assert await ledger.comments.on_version("fraud-detector", "9") == []


async def test_update_comment_changes_row_not_activity(ledger: Ledger) -> None:
    await add_comment(ledger, "c1", "original")

    updated = await ledger.comments.update(comment_id="c1", text="edited", now_ms=T0 + 100)

    assert updated is not None
    assert (updated.comment, updated.created_ms, updated.updated_ms) == ("edited", T0, T0 + 100)
    assert await ledger.comments.get("c1") == updated
    [entry] = await ledger.requests.audit_trail("fraud-detector", "7")
    assert entry.comment == "original"  # the log is append-only: it keeps what was first said
    assert await ledger.comments.update(comment_id="missing", text="x", now_ms=T0) is None


async def test_delete_comment_keeps_its_activity(ledger: Ledger) -> None:
    await add_comment(ledger, "c1", "to be withdrawn")
    await add_comment(ledger, "c2", "stays")

    assert await ledger.comments.delete(comment_id="c1") is True
    assert await ledger.comments.delete(comment_id="c1") is False
    assert await ledger.comments.get("c1") is None
    assert [row.id for row in await ledger.comments.on_version("fraud-detector", "7")] == ["c2"]
    assert len(await ledger.requests.audit_trail("fraud-detector", "7")) == 2
    assert await ledger.comments.update(comment_id="c1", text="too late", now_ms=T0) is None


@pytest.mark.parametrize("value", AWKWARD, ids=range(len(AWKWARD)))
async def test_awkward_comment_values_round_trip_unchanged(ledger: Ledger, value: str) -> None:
    long_text = (value + " <script>alert(1)</script> ") * 200
    await add_comment(
        ledger, "c-awk", long_text, model=value, version=AWKWARD_VERSION, user_id=value
    )

    [row] = await ledger.comments.on_version(value, AWKWARD_VERSION)
    assert (row.comment, row.user_id, row.model_name) == (long_text, value, value)
    [entry] = await ledger.requests.audit_trail(value, AWKWARD_VERSION)
    assert entry.comment == long_text
    updated = await ledger.comments.update(comment_id="c-awk", text=value, now_ms=T0 + 1)
    assert updated is not None and await ledger.comments.get("c-awk") == updated
    assert updated.comment == value


async def test_comments_in_one_millisecond_keep_their_order(ledger: Ledger) -> None:
    ids = [f"c-{n:02d}-{suffix}" for n, suffix in zip(range(12), "zyxwvutsrqpo", strict=True)]
    for comment_id in reversed(ids):  # ids sort against the insertion order
        await add_comment(ledger, comment_id, comment_id, now_ms=T0)

    listed = await ledger.comments.on_version("fraud-detector", "7")
    assert [row.id for row in listed] == list(reversed(ids))
    assert [row.created_ms for row in listed] == list(range(T0, T0 + 12))
    entries = await ledger.requests.audit_trail("fraud-detector", "7")
    assert [entry.comment for entry in entries] == list(reversed(ids))


@pytest.mark.parametrize(
    "written",
    ["postgresql://ops@db.internal:5432/signoff", "postgres://ops@db.internal:5432/signoff"],
)
def test_a_plain_postgresql_url_means_psycopg_3(written: str) -> None:
    """An operator writes libpq's URL; SQLAlchemy would pick psycopg2, which is not installed."""
    url = engine_url(written)
    assert (url.drivername, url.host, url.port, url.database, url.username) == (
        "postgresql+psycopg",
        "db.internal",
        5432,
        "signoff",
        "ops",
    )
    assert engine_url("postgresql+psycopg://ops@h/db").drivername == "postgresql+psycopg"
    assert engine_url("sqlite:///x.db").drivername == "sqlite"
