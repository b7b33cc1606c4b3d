"""`signoff db upgrade`, run as a platform engineer runs it, on SQLite and on PostgreSQL: an
empty database gets the whole schema; a database the first release (migration 0001) wrote,
with rows in it, is brought to the newest revision with every row still readable. Either way
the schema ends exactly as the table models say (Alembic's own comparison finds nothing)."""

from __future__ import annotations

import os
import subprocess
import sys

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from workflows.domain import RequestState
from workflows.ledger import Ledger
from workflows.ledger.engine import head_revision
from workflows.ledger.tables import SQLModel

# The first release's tables, as migration 0001 created them (the columns the rows below set).
REQUESTS_0001 = sa.table(
    "transition_requests",
    *(sa.column(name) for name in ("id", "workflow_id", "run_id", "model_name", "version")),
    *(sa.column(name) for name in ("target", "from_stage", "requester", "comment", "state")),
    *(sa.column(name) for name in ("reason", "policy_hash", "quorum")),
    sa.column("checks", sa.JSON),
    sa.column("approvals", sa.JSON),
    *(sa.column(name) for name in ("revision", "created_ms", "updated_ms")),
)
ACTIVITIES_0001 = sa.table(
    "activities",
    *(sa.column(name) for name in ("id", "request_id", "seq", "model_name", "version")),
    *(sa.column(name) for name in ("activity_type", "user_id", "from_stage", "to_stage")),
    *(sa.column(name) for name in ("comment", "system_comment", "created_ms", "updated_ms")),
)
COMMENTS_0001 = sa.table(
    "comments",
    *(sa.column(name) for name in ("id", "model_name", "version", "user_id", "comment")),
    *(sa.column(name) for name in ("created_ms", "updated_ms")),
)


def db_upgrade(url: str) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SIGNOFF_")}
    done = subprocess.run(
        [sys.executable, "-m", "api.cli", "db", "upgrade"],
        env=env | {"SIGNOFF_DATABASE_URL": url, "SIGNOFF_STARTUP_TIMEOUT_S": "30"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def schema_drift(ledger: Ledger) -> list[object]:
    with ledger.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        return list(compare_metadata(context, SQLModel.metadata))


async def test_db_upgrade_builds_the_schema_of_an_empty_database(ledger_url: str) -> None:
    out = db_upgrade(ledger_url)
    assert f"upgraded from an empty database to revision {head_revision()}" in out, out
    ledger = Ledger(ledger_url)
    try:
        assert await ledger.schema_revision() == head_revision()
        assert schema_drift(ledger) == []
        assert f"already at revision {head_revision()}" in db_upgrade(ledger_url)
    finally:
        ledger.dispose()


async def test_db_upgrade_keeps_what_the_first_release_recorded(ledger_url: str) -> None:
    first_release = Ledger(ledger_url)
    await first_release.migrate("0001")
    with first_release.engine.begin() as connection:
        connection.execute(sa.insert(REQUESTS_0001), [_request_0001()])
        connection.execute(sa.insert(ACTIVITIES_0001), [_activity_0001()])
        connection.execute(sa.insert(COMMENTS_0001), [_comment_0001()])
    first_release.dispose()

    out = db_upgrade(ledger_url)
    assert f"upgraded from revision 0001 to revision {head_revision()}" in out, out

    ledger = Ledger(ledger_url)
    try:
        assert schema_drift(ledger) == []
        request = await ledger.requests.get("req-0001")
        assert request is not None
        assert (request.model, request.version, request.target) == ("fraud", "3", "Production")
        assert request.state is RequestState.PENDING and request.quorum == 2
        assert [approval.user_id for approval in request.approvals] == ["mia"]
        [entry] = await ledger.requests.audit_trail("fraud", "3")
        assert (entry.id, entry.activity_type, entry.user_id) == (
            "act-0001",
            "REQUESTED_TRANSITION",
            "lee",
        )
        [comment] = await ledger.comments.on_version("fraud", "3")
        assert (comment.id, comment.comment) == ("c-0001", "AUC 0.91 on holdout")
    finally:
        ledger.dispose()


def _request_0001() -> dict[str, object]:
    return {
        "id": "req-0001",
        "workflow_id": "transition/fraud/3/Production",
        "run_id": "run-1",
        "model_name": "fraud",
        "version": "3",
        "target": "Production",
        "from_stage": "None",
        "requester": "lee",
        "comment": "please",
        "state": "PENDING",
        "reason": None,
        "policy_hash": "a" * 64,
        "quorum": 2,
        "checks": [],
        "approvals": [{"user_id": "mia", "creation_timestamp": 1_700_000_000_500}],
        "revision": 2,
        "created_ms": 1_700_000_000_000,
        "updated_ms": 1_700_000_000_500,
    }


def _activity_0001() -> dict[str, object]:
    return {
        "id": "act-0001",
        "request_id": "req-0001",
        "seq": 1,
        "model_name": "fraud",
        "version": "3",
        "activity_type": "REQUESTED_TRANSITION",
        "user_id": "lee",
        "from_stage": "None",
        "to_stage": "Production",
        "comment": "please",
        "system_comment": None,
        "created_ms": 1_700_000_000_000,
        "updated_ms": 1_700_000_000_000,
    }


def _comment_0001() -> dict[str, object]:
    return {
        "id": "c-0001",
        "model_name": "fraud",
        "version": "3",
        "user_id": "lee",
        "comment": "AUC 0.91 on holdout",
        "created_ms": 1_700_000_000_100,
        "updated_ms": 1_700_000_000_100,
    }
