"""Every read the API and the worker make of the ledger is served by an index on PostgreSQL:
each repository read runs for real, its SQL is captured as sent, and `EXPLAIN` of it (with
sequential scans priced out, so any usable index wins) must not scan a table that grows with
the ledger from end to end. A query the planner can only answer by a sequential scan fails
here, before a registry of thousands of models finds it."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import event

from policies import Principal, load_policy, policy_hash, rule_for
from policies.loader import default_policy_path
from tests.support.postgres import PostgresServer
from workflows.domain import AuditType
from workflows.ledger import InboxQuery, Ledger
from workflows.messages import TransitionInput

LARGE = {
    "transition_requests",
    "activities",
    "request_approver_roles",
    "comments",
    "webhook_deliveries",
    "inbound_hooks",
    "registry_marks",
    "reconciler_runs",
    "web_sessions",
}
"""Tables that grow with use (subscriptions, `webhooks`, stay small)."""


@pytest.fixture(scope="module")
async def ledger(postgres_server: PostgresServer) -> AsyncIterator[Ledger]:
    ledger = Ledger(postgres_server.create_database())
    await ledger.migrate()
    policy = load_policy(default_policy_path())
    inp = TransitionInput(
        request_id="r1",
        model="fraud",
        version="1",
        target="Production",
        from_stage="None",
        requester=Principal(sub="lee", roles=["ml-lead"]),
        policy=policy,
        rule=rule_for(policy, "fraud", "Production"),
        policy_hash=policy_hash(policy),
        created_ms=1,
    )
    await ledger.requests.record(
        snapshot=inp.opening_snapshot("transition/fraud/1/Production", "x")
    )
    yield ledger
    ledger.dispose()


def _reads(ledger: Ledger) -> list[tuple[str, Any]]:
    inbox = [
        InboxQuery(tab=tab, subject="mia", roles=roles, readable=None, after=after)
        for tab in ("waiting", "mine", "decided")
        for after in (None, (5, "z"))
        for roles in (["ml-lead"], ["ml-lead", "risk-officer"])
    ]
    narrowed = [  # every narrowing the page offers, and a viewer who reads some models only
        InboxQuery(
            tab=tab,
            subject="mia",
            roles=["ml-lead"],
            readable=["fraud", "churn"],
            model="fraud",
            target="Production",
            state="PENDING",
        )
        for tab in ("waiting", "mine", "decided")
    ]
    return [
        ("requests.get", ledger.requests.get("r1")),
        ("requests.search model version", ledger.requests.search(model="fraud", version="1")),
        ("requests.search open of model", ledger.requests.search(model="fraud", open_only=True)),
        ("requests.search open", ledger.requests.search(open_only=True)),
        ("requests.search all", ledger.requests.search()),
        ("requests.audit_trail", ledger.requests.audit_trail("fraud", "1")),
        ("requests.applied_moves", ledger.requests.applied_moves("fraud", "Production")),
        ("requests.entries_since", ledger.requests.entries_since(AuditType.NEW_COMMENT, 0)),
        *((f"inbox.page {q.tab} {q.after} {q.roles}", ledger.inbox.page(q)) for q in inbox),
        *((f"inbox.page {q.tab} narrowed", ledger.inbox.page(q)) for q in narrowed),
        ("inbox.model_names", ledger.inbox.model_names()),
        ("inbox.unindexed_pending", ledger.inbox.unindexed_pending()),
        ("comments.on_version", ledger.comments.on_version("fraud", "1")),
        ("comments.get", ledger.comments.get("c1")),
        ("webhooks.deliveries", ledger.webhooks.deliveries("w1")),
        ("webhooks.get_delivery", ledger.webhooks.get_delivery("d1")),
        ("inbound.recent", ledger.inbound.recent()),
        ("inbound.recent of source", ledger.inbound.recent(source="slack")),
        ("marks.get", ledger.marks.get("fraud", "1")),
        ("marks.of_model", ledger.marks.of_model("fraud")),
        ("marks.of_models", ledger.marks.of_models({"fraud", "churn"})),
        ("runs.latest", ledger.runs.latest()),
        ("web_sessions.get", ledger.web_sessions.get("s" * 43, now_ms=1, idle_ms=1)),
    ]


def _seq_scans(plan: dict[str, Any]) -> list[str]:
    found = []
    if plan.get("Node Type") == "Seq Scan":
        found.append(plan.get("Relation Name", "?"))
    for child in plan.get("Plans", []):
        found += _seq_scans(child)
    return found


async def test_no_read_scans_a_growing_table(ledger: Ledger) -> None:
    captured: list[tuple[str, str, Any]] = []
    current = {"name": ""}

    def capture(_conn, _cursor, statement, parameters, _context, _many) -> None:  # type: ignore[no-untyped-def]
        if statement.lstrip().upper().startswith("SELECT"):
            captured.append((current["name"], statement, parameters))

    reads = _reads(ledger)
    event.listen(ledger.engine, "before_cursor_execute", capture)
    try:
        for name, read in reads:
            current["name"] = name
            await read
    finally:
        event.remove(ledger.engine, "before_cursor_execute", capture)

    assert {name for name, _, _ in captured} >= {name for name, _ in reads}
    offenders = []
    with ledger.engine.connect() as connection:
        connection.exec_driver_sql("SET enable_seqscan = off")
        for name, statement, parameters in captured:
            rows = connection.exec_driver_sql(f"EXPLAIN (FORMAT JSON) {statement}", parameters)
            plan = rows.scalar_one()
            plan = json.loads(plan) if isinstance(plan, str) else plan
            scanned = set(_seq_scans(plan[0]["Plan"])) & LARGE
            if scanned:
                offenders.append(f"{name}: sequential scan of {sorted(scanned)}\n  {statement}")
    assert not offenders, "\n".join(offenders)
